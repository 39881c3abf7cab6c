"""`sovra sync SOURCE`: run one configured source into the index, with progress and a summary.

Sources come from ``[sources.NAME]`` tables of the settings (``sovra.toml`` or ``SOVRA_SOURCES``)
and from the registry ``sovra ingest PATH`` keeps (``sources.json``). Secrets never come from those:
the Graph connector's come from the ``SOVRA_GRAPH_*`` settings (environment or a file), S3's from
boto3's own credential chain (``AWS_*`` variables, ``~/.aws``, instance roles).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sovra.config import Settings
from sovra.documents import Connector
from sovra.errors import ConfigError, InputError, SourceError
from sovra.ingest import Ingestor, IngestReport, IngestState, load_sources

_SECRET_KEYS = frozenset({"client_secret", "password", "secret", "aws_secret_access_key", "aws_session_token"})
_PATH_KINDS = {"filesystem": "root", "sharepoint_export": "root", "ledger": "db_path"}


def source_config(settings: Settings, name: str) -> tuple[str, dict[str, Any]]:
    """(kind, options) of the source called ``name``."""
    table = settings.sources.get(name)
    if table is None:
        registered = load_sources(settings.paths.root / "sources.json").get(name)
        if registered is None:
            known = sorted({*settings.sources, *load_sources(settings.paths.root / "sources.json")})
            raise InputError(
                f"unknown source {name!r}",
                hint=f"known sources: {', '.join(known) or 'none'}; add a [sources.{name}] table to sovra.toml",
            )
        kind = registered["kind"]
        return kind, {_PATH_KINDS.get(kind, "root"): registered["path"]}
    if not isinstance(table, dict) or not isinstance(table.get("kind"), str):
        raise ConfigError(f"source {name!r} has no kind", hint=f"add kind = 's3' (or another) to [sources.{name}]")
    options = {k: v for k, v in table.items() if k != "kind"}
    leaked = sorted(_SECRET_KEYS & set(options))
    if isinstance(options.get("url"), str) and _has_password(options["url"]):
        leaked.append("a password in url")
    if leaked:
        raise ConfigError(
            f"source {name!r} has a secret in its configuration ({', '.join(leaked)})",
            hint="remove it; use SOVRA_GRAPH_CLIENT_SECRET(_FILE), the AWS_* variables, or PGPASSWORD/~/.pgpass",
        )
    return table["kind"], options


def _has_password(url: str) -> bool:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password is not None
    except Exception:
        return False


def build_connector(settings: Settings, name: str) -> Connector:
    from sovra.connectors.base import configure, create

    configure(settings.connectors)
    kind, options = source_config(settings, name)
    options = {"name": name, **options}
    if kind == "sharepoint_graph":
        options = {**_graph_options(settings), **options}
    if kind in ("sharepoint_graph", "s3", "filesystem", "sharepoint_export"):
        options.setdefault("max_bytes", settings.max_file_bytes)
    return create(kind, **options)


def _graph_options(settings: Settings) -> dict[str, Any]:
    secret = settings.graph_client_secret
    if settings.graph_client_secret_file is not None:
        try:
            secret = settings.graph_client_secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read SOVRA_GRAPH_CLIENT_SECRET_FILE ({exc.strerror or exc})") from exc
    opts: dict[str, Any] = {
        "tenant_id": settings.graph_tenant_id or "",
        "client_id": settings.graph_client_id or "",
        "client_secret": secret,
        "certificate_path": settings.graph_certificate_file,
        "authority_host": settings.graph_authority_host,
        "graph_url": settings.graph_url,
        "timeout_s": settings.graph_timeout_s,
    }
    if settings.graph_ca_bundle is not None:
        opts["ca_bundle"] = str(settings.graph_ca_bundle)
    return opts


class _SyncProgress:
    """A bar when the total is known (a full listing), a spinner with counts for a delta feed."""

    def __init__(self, console: Console) -> None:
        self.counts: Counter[str] = Counter()
        self._p = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} items"),
            TextColumn("[dim]{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: Any = None

    def __enter__(self) -> _SyncProgress:
        self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._p.stop()

    def start(self, source: str, total: int) -> None:
        self._task = self._p.add_task(source, total=total or None, counts="")

    def advance(self, doc_id: str, status: str) -> None:
        self.counts[status] += 1
        counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        self._p.update(self._task, advance=1, counts=counts)


def run_sync(settings: Settings, name: str, console: Console | None = None, full: bool = False) -> IngestReport:
    from sovra.runtime import Runtime

    connector = build_connector(settings, name)
    if full:
        state = IngestState(settings.paths.state_db)
        try:
            state.reset_cursor(name)
        finally:
            state.close()
    runtime = Runtime(settings)
    try:
        svc = runtime.services
        ingestor = Ingestor(
            svc.index, svc.embedder, settings.paths.state_db, settings.chunk_chars, settings.chunk_overlap
        )
        if console is None:
            return ingestor.run([connector])
        with _SyncProgress(console) as progress:
            return ingestor.run([connector], progress)
    finally:
        runtime.close()


def sync_command(
    source: Annotated[
        str, typer.Argument(help="A source configured in sovra.toml (sources.NAME) or registered by `sovra ingest`.")
    ],
    full: Annotated[bool, typer.Option(help="Forget the stored cursor: enumerate everything again.")] = False,
) -> None:
    """Sync one source into the index: only what changed since the last sync where the source can say."""
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    settings = Settings()
    report = run_sync(settings, source, console=err, full=full)
    out.print(
        f"{source}: {report.added} added, {report.updated} updated, {report.deleted} deleted, "
        f"{report.acl_changed} permission changes, {report.unchanged} unchanged, {len(report.failed)} failed "
        f"({report.chunks_embedded} chunks embedded in {report.seconds:.1f}s)",
        markup=False,
    )
    source_failure = None
    for item, reason in report.failed:
        if item == source:
            source_failure = reason
        else:
            err.print(f"  failed: {item}: {reason}", markup=False)
    if source_failure is not None:
        # The sync stopped: what it applied stays, and the next run resumes from the last checkpoint.
        # A connector's own mistake does not go away by running again: say what to fix instead.
        hint = report.fix.get(source) or "run `sovra sync` again to resume"
        raise SourceError(f"source {source!r} stopped: {source_failure}", hint=hint)
