"""Installing Sovra puts only the `sovra` name into site-packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_folders_import_only_as_sovra_subpackages(tmp_path):
    # Run from an empty folder: the repo root on sys.path would make `agents` importable by accident.
    ok = subprocess.run(
        [sys.executable, "-c", "import sovra.agents, sovra.tools, sovra.connectors, sovra.ui, sovra.evals"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    for name in ("agents", "tools", "connectors", "ui", "evals"):
        bad = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True)
        assert bad.returncode != 0 and "ModuleNotFoundError" in bad.stderr, name


def test_the_wheel_contains_only_the_sovra_package(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__"))
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta as b; b.build_wheel({str(out)!r})"],
        cwd=src,
        check=True,
        capture_output=True,
    )
    names = zipfile.ZipFile(next(out.glob("sovra-*.whl"))).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"sovra"}
    for sub in ("agents/assistant.py", "tools/search.py", "connectors/parsers.py", "ui/cli.py", "evals/demo_corpus.py"):
        assert f"sovra/{sub}" in names
    assert "sovra/data/bm25-stopwords-en.txt" in names
