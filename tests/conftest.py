"""Shared fixtures: real components everywhere (fastembed, qdrant-edge, SQLite, llama.cpp)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from sovra.config import Settings

os.environ["HF_HUB_OFFLINE"] = "1"

# CI explores a fixed set of examples so a red build is reproducible; local runs keep searching
# new ones (that is how the card-number redaction bug was found).
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted ONNX embedding model, built once per test session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def embedder(model_cache: Path):
    from sovra.embeddings import Embedder

    return Embedder(None, model_cache)


def make_settings(data_dir: Path, **overrides) -> Settings:
    return Settings(data_dir=data_dir, **overrides)


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A data dir with the demo bank generated and ingested once for the whole session."""
    from sovra.evals.demo_corpus import AS_OF
    from sovra.ui.commands import setup_demo

    # Pinned to the corpus date: "this year" must not depend on the day the tests run.
    settings = make_settings(tmp_path_factory.mktemp("demo-data"), as_of=AS_OF)
    report = setup_demo(settings)
    assert not report.failed, report.failed
    shutil.copytree(settings.data_dir, _pristine(settings.data_dir), ignore=shutil.ignore_patterns("logs", "*.lock"))
    return settings


def _pristine(data_dir: Path) -> Path:
    """Where the session's demo data dir is kept as it was right after ingestion, before any test
    asked, approved or opened a case in it. A path, not a module global: test modules import this
    file as ``conftest``, a second module object beside the one pytest loaded."""
    return data_dir.with_name(data_dir.name + "-pristine")


def copy_demo_data(settings: Settings, dest: Path) -> Path:
    """A private copy of a demo data dir (the embedded index admits one process at a time), from its
    pristine state where there is one: what one test did never shows up in another's copy."""
    source = _pristine(settings.data_dir) if _pristine(settings.data_dir).is_dir() else settings.data_dir
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("logs", "*.lock"))
    # Sources were registered with absolute paths into the original corpus; point them here.
    sources = (dest / "sources.json").read_text().replace(str(settings.data_dir), str(dest))
    (dest / "sources.json").write_text(sources)
    return dest


def private_demo_settings(settings: Settings, dest: Path) -> Settings:
    """Settings on a private copy of the demo data dir, for a test that opens its own runtime.

    The session's demo dir belongs to ``demo_runtime``; a second handle on its embedded index
    would fail (or, worse, pass or fail by test order)."""
    return settings.model_copy(update={"data_dir": copy_demo_data(settings, dest)})


@pytest.fixture(scope="module")
def module_demo_settings(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A private copy of the demo data dir shared by one test module."""
    return private_demo_settings(demo_settings, tmp_path_factory.mktemp("demo-copy") / "data")


@pytest.fixture(scope="session")
def demo_runtime(demo_settings: Settings):
    """One runtime (and so one local model server) shared by the agent tests."""
    from sovra.runtime import Runtime

    rt = Runtime(demo_settings)
    yield rt
    rt.close()
