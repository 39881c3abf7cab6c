"""What the CLI (and later the other faces) do, above the runtime: pick connectors, run ingestion
with a progress bar, set up the demo, ask an agent."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sovra.config import Settings
from sovra.errors import InputError
from sovra.ingest import Ingestor, IngestReport, load_sources, save_source
from sovra.runtime import Answer, Runtime


class _RichProgress:
    def __init__(self, console: Console) -> None:
        self._p = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> _RichProgress:
        self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._p.stop()

    def start(self, source: str, total: int) -> None:
        self._task = self._p.add_task(source, total=total)

    def advance(self, doc_id: str, status: str) -> None:
        self._p.advance(self._task)


def detect_kind(path: Path) -> str:
    if path.is_file() and path.suffix.lower() in {".sqlite", ".sqlite3", ".db"}:
        return "ledger"
    if path.is_dir() and (path / "manifest.json").is_file():
        return "sharepoint_export"
    if path.is_dir():
        return "filesystem"
    raise InputError(
        f"{path} is not a folder or a ledger database", hint="give a folder, a SharePoint export or a .sqlite file"
    )


def _refuse_unparseable(folder: Path) -> None:
    """A new folder without one file Sovra can parse is not registered: ingesting it would report
    "0 added" and leave an empty source behind, which reads as success."""
    from collections import Counter

    from sovra.connectors.base import SIDECAR_SUFFIX
    from sovra.connectors.parsers import SUPPORTED_EXTENSIONS, is_supported

    seen: Counter[str] = Counter()
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if any(part.startswith((".", "~$")) for part in rel.parts) or p.name.endswith(SIDECAR_SUFFIX):
            continue
        if p.is_file():
            if is_supported(p):
                return
            seen[p.suffix.lower() or "(no extension)"] += 1
    found = ", ".join(f"{n} {ext}" for ext, n in seen.most_common(5)) or "no files"
    raise InputError(
        f"{folder} has no file Sovra can parse ({found}); nothing was ingested or registered",
        hint=f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}; for other formats write a connector "
        "(docs/sdk.md, section 1) and run it with sovra sync",
    )


def make_connector(kind: str, name: str, path: Path, default_acl: list[str] | None = None) -> Any:
    """Build a connector through the registry, so kinds published by other packages work too.
    ``default_acl``: who may read a folder's files that have no ``.meta.json`` sidecar."""
    from sovra.connectors.base import create

    location: dict[str, Any] = {"db_path": path} if kind == "ledger" else {"root": path}
    if default_acl is not None and kind == "filesystem":
        location["default_acl"] = default_acl
    return create(kind, name=name, **location)


def _sources_file(settings: Settings) -> Path:
    return settings.paths.root / "sources.json"


def run_ingest(
    settings: Settings,
    path: Path | None = None,
    source: str | None = None,
    name: str | None = None,
    rebuild: bool = False,
    console: Console | None = None,
    ray_workers: int | None = None,
    default_acl: list[str] | None = None,
) -> IngestReport:
    sources_file = _sources_file(settings)
    known = load_sources(sources_file)
    targets: list[tuple[str, str, Path]] = []
    acls: dict[str, list[str] | None] = {n: s.get("default_acl") for n, s in known.items()}
    if path is not None:
        if not path.exists():
            raise InputError(
                f"{path} does not exist",
                hint="give a folder, a SharePoint export or a ledger .sqlite; "
                "`sovra ingest --source NAME` re-syncs a known source",
            )
        kind = detect_kind(path)
        src_name = name or (path.stem if kind == "ledger" else path.resolve().name)
        if default_acl is not None and kind != "filesystem":
            raise InputError(
                "--acl applies to folders only", hint="SharePoint exports and ledgers carry their own access lists"
            )
        prior = known.get(src_name)
        if kind == "filesystem" and prior is None:
            _refuse_unparseable(path)
        if prior is not None and (prior.get("path") != str(path.resolve()) or prior.get("kind") != kind):
            # A folder that happens to share a name must never repoint (and so empty) another source.
            raise InputError(
                f"a source named {src_name!r} already reads {prior.get('path')}",
                hint=f"give this one its own name with --name NAME, or re-sync the other with --source {src_name}",
            )
        acls[src_name] = default_acl if default_acl is not None else acls.get(src_name)
        save_source(sources_file, src_name, kind, path, acls[src_name])
        targets.append((src_name, kind, path))
    elif source is not None:
        if source not in known:
            raise InputError(
                f"unknown source {source!r}",
                hint=f"known sources: {', '.join(sorted(known)) or 'none'}; or give a PATH",
            )
        targets.append((source, known[source]["kind"], Path(known[source]["path"])))
    elif rebuild:
        targets = [(n, s["kind"], Path(s["path"])) for n, s in sorted(known.items())]
    else:
        raise InputError("nothing to ingest", hint="give a PATH, --source NAME, or --rebuild")
    if rebuild:
        _drop_index(settings)
    return _ingest(settings, [make_connector(k, n, p, acls.get(n)) for n, k, p in targets], console, ray_workers)


def _drop_index(settings: Settings) -> None:
    if settings.qdrant_url:
        raise InputError(
            "--rebuild of a Qdrant server collection is not automatic", hint="delete the collection, then ingest"
        )
    from sovra.index.edge import EdgeIndex, IndexInUseError

    # Other processes may be serving this index (the chat, the API, a bot): never delete it under them.
    probe = EdgeIndex(settings.paths.qdrant, settings.collection)
    try:
        probe.lock()
    except IndexInUseError:
        raise InputError(
            "--rebuild needs the index to itself: another Sovra process on this data dir is using it",
            hint="stop `sovra serve`, `sovra ui`, the bots and `sovra mcp` on this data dir, then rebuild",
        ) from None
    try:
        shutil.rmtree(settings.paths.root / "qdrant", ignore_errors=True)
        settings.paths.state_db.unlink(missing_ok=True)
    finally:
        probe.unlock()


def _ingest(
    settings: Settings, connectors: list[Any], console: Console | None, ray_workers: int | None = None
) -> IngestReport:
    runtime = Runtime(settings)
    svc = runtime.services
    try:
        ingestor = Ingestor(
            svc.index, svc.embedder, settings.paths.state_db, settings.chunk_chars, settings.chunk_overlap
        )
        if ray_workers is not None:  # parse/chunk/embed on Ray tasks; this process writes the index
            from sovra.ingest_ray import run_ray_ingest

            return run_ray_ingest(ingestor, connectors, settings, ray_workers)[0]
        if console is None:
            return ingestor.run(connectors)
        with _RichProgress(console) as progress:
            return ingestor.run(connectors, progress)
    finally:
        runtime.close()


def setup_demo(settings: Settings, reset: bool = False, console: Console | None = None) -> IngestReport:
    """Generate the demo bank once, register its users and three sources, ingest incrementally."""
    from sovra.evals.demo_corpus import CHAT_EXAMPLES, generate

    corpus = settings.paths.corpus
    if reset:
        shutil.rmtree(corpus, ignore_errors=True)
        _drop_index(settings)
        corpus = settings.paths.corpus
    if not (corpus / "users.json").is_file():
        generate(corpus)
    users_file = settings.resolved_users_file
    if not users_file.is_file() or reset:
        shutil.copyfile(corpus / "users.json", users_file)
    examples = settings.paths.root / "chat-examples.json"
    if not examples.is_file() or reset:
        examples.write_text(json.dumps(list(CHAT_EXAMPLES), indent=2) + "\n")
    sources_file = _sources_file(settings)
    specs = [
        ("sharepoint", "sharepoint_export", corpus / "sharepoint"),
        ("contracts", "filesystem", corpus / "contracts"),
        ("ledger", "ledger", corpus / "ledger.sqlite"),
    ]
    for n, k, p in specs:
        save_source(sources_file, n, k, p)
    return _ingest(settings, [make_connector(k, n, p) for n, k, p in specs], console)


def ask_questions(settings: Settings, questions: list[tuple[str, str]], agent_name: str) -> Iterator[Answer]:
    """Answer (user, question) pairs with one runtime: the model server and the embedding model
    start once, not once per question."""
    from sovra.agents import get_agent

    agent = get_agent(agent_name, settings)
    runtime = Runtime(settings)
    try:
        for user_id, question in questions:
            yield runtime.ask(agent, question, user_id, interface="cli")
    finally:
        runtime.close()


def ask_question(settings: Settings, question: str, user_id: str, agent_name: str) -> Answer:
    return next(ask_questions(settings, [(user_id, question)], agent_name))
