"""Ingestion triggers: re-sync a registered source in the background; read the job's state.

Only an admin principal (``SOVRA_API_ADMIN_PRINCIPALS``, default ``group:admins``) may trigger a
sync. A job is written to the audit log (``job.start`` / ``job.end``, the job id as run id), so who
re-synced what and when is on the record, and any worker of a multi-worker server can report a job
another worker ran. The sync itself runs in this process through the runtime's own index and
embedder, behind the same gate as runs: the embedded index has one writer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request

from sovra.audit import new_run_id
from sovra.errors import SovraError
from sovra.identity import User
from sovra.privacy import is_auditor
from sovra.runtime import Runtime
from sovra.ui.api_auth import ApiError, CurrentUser, has_principal
from sovra.ui.api_state import api_state

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["ingestion"])

JOB_START, JOB_END = "job.start", "job.end"
_tasks: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones


def _sources(rt: Runtime) -> dict[str, dict[str, str]]:
    from sovra.ingest import load_sources

    return load_sources(rt.settings.paths.root / "sources.json")


def _require_admin(rt: Runtime, user: User) -> None:
    admins = list(rt.settings.api_admin_principals)
    if not has_principal(user, admins):
        raise ApiError(403, f"{user.id} may not trigger ingestion", hint=f"needs one of: {', '.join(admins)}")


def _sync(rt: Runtime, name: str, spec: dict[str, str]) -> dict[str, Any]:
    from sovra.ingest import Ingestor
    from sovra.ui.commands import make_connector

    s, svc = rt.settings, rt.services
    connector = make_connector(spec["kind"], name, Path(spec["path"]))
    report = Ingestor(svc.index, svc.embedder, s.paths.state_db, s.chunk_chars, s.chunk_overlap).run([connector])
    return {"summary": report.summary(), "failed": [str(f) for f in getattr(report, "failed", [])][:50]}


async def _run_job(request_app: Any, job_id: str, name: str, spec: dict[str, str], user: User) -> None:
    st = request_app.state.api
    rt: Runtime = st.runtime
    started = time.monotonic()
    result: dict[str, Any]
    async with st.gate:
        try:
            out = await anyio.to_thread.run_sync(_sync, rt, name, spec)
            result = {"status": "done", **out}
        except SovraError as exc:
            result = {"status": "failed", "error": exc.message, "hint": exc.hint}
        except Exception as exc:  # a bug: on the record, and in the log with its traceback
            log.exception("ingestion job %s failed", job_id)
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    result["seconds"] = round(time.monotonic() - started, 3)
    await anyio.to_thread.run_sync(lambda: rt.services.audit.append(JOB_END, result, run_id=job_id, user_id=user.id))


@router.post("/sources/{name}/sync", status_code=202)
async def sync_source(name: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    """Re-sync a registered source in the background (admins only); poll GET /v1/jobs/{job_id}."""
    rt = api_state(request).runtime
    _require_admin(rt, user)
    known = await anyio.to_thread.run_sync(_sources, rt)
    if name not in known:
        raise ApiError(404, f"unknown source {name!r}", hint=f"known sources: {', '.join(sorted(known)) or 'none'}")
    job_id = new_run_id()
    data = {"job": "sync", "source": name, "kind": known[name]["kind"]}
    await anyio.to_thread.run_sync(lambda: rt.services.audit.append(JOB_START, data, run_id=job_id, user_id=user.id))
    task = asyncio.create_task(_run_job(request.app, job_id, name, known[name], user))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"job_id": job_id, "status": "running", "source": name}


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, user: CurrentUser, request: Request) -> dict[str, Any]:
    """An ingestion job's state: running, done (with the sync summary) or failed."""
    rt = api_state(request).runtime
    records = [
        r for r in await anyio.to_thread.run_sync(rt.services.audit.records, job_id) if r.kind.startswith("job.")
    ]
    if not records:
        raise ApiError(404, f"no job {job_id!r}")
    if records[0].user_id != user.id and not is_auditor(user):
        _require_admin(rt, user)
    start = records[0]
    end = next((r for r in records if r.kind == JOB_END), None)
    body: dict[str, Any] = {"job_id": job_id, "started": start.ts, "by": start.user_id, **start.data}
    if end is None:
        return body | {"status": "running"}
    return body | dict(end.data) | {"finished": end.ts}
