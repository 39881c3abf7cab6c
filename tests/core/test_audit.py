"""The hash-chained audit log and the run recorder, against real SQLite and the real OTel SDK."""

from __future__ import annotations

import dataclasses
import enum
import json
import multiprocessing
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from sovra.audit import GENESIS_HASH, AuditLog, ChainHead, canonical_json, new_run_id, record_hash
from sovra.errors import AuditIntegrityError
from sovra.recorder import RunRecorder
from sovra.telemetry import configure_tracing, memory_exporter

N = 200
HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def fill(log: AuditLog, n: int = N) -> None:
    for i in range(n):
        log.append(
            "tool.search" if i % 3 else "plan",
            {"i": i, "query": f"question {i}", "scores": [i / 7, 1.5], "text": "Zürich €"},
            run_id=f"run-{i // 20}",
            user_id=None if i % 11 == 0 else f"user{i % 4}",
            trace_id=f"{i:032x}",
            span_id=f"{i:016x}",
        )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "template.sqlite"
    with AuditLog(path) as log:
        fill(log)
    return path  # closed, so the WAL is checkpointed into this one file


@contextmanager
def tampered(template: Path) -> Iterator[tuple[sqlite3.Connection, AuditLog]]:
    """A fresh copy of the template and a raw connection with the append-only triggers dropped,
    which is what anyone with write access to the file can do."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "audit.sqlite"
        shutil.copy(template, path)
        log = AuditLog(path)  # opening re-creates the triggers, so drop them after
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("DROP TRIGGER audit_records_no_update")
        raw.execute("DROP TRIGGER audit_records_no_delete")
        try:
            yield raw, log
        finally:
            log.close()
            raw.close()


def row(raw: sqlite3.Connection, seq: int) -> dict[str, object]:
    cur = raw.execute("SELECT * FROM audit_records WHERE seq = ?", (seq,))
    return dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))


# -- the chain ----------------------------------------------------------------------------------


def test_chain_verifies_after_200_appends(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.sqlite") as log:
        assert log.verify().ok and log.verify().checked == 0  # empty log is a valid chain
        fill(log)
        result = log.verify()
        assert result.ok and result.checked == N and result.first_bad_seq is None
        assert log.head().count == N
        recs = log.records("run-3")
        assert [r.seq for r in recs] == list(range(61, 81))
        assert recs[0].data["text"] == "Zürich €"
        assert recs[0].timestamp.tzinfo is not None and len(recs[0].ts.split(".")[1]) >= 6
    first = AuditLog(tmp_path / "a.sqlite").records("run-0")[0]
    assert first.prev_hash == GENESIS_HASH
    body = {k: getattr(first, k) for k in ("seq", "run_id", "ts", "kind", "user_id", "trace_id", "span_id")}
    assert first.hash == record_hash(**body, data=first.sealed, prev_hash=GENESIS_HASH)


def test_durability_settings(tmp_path: Path) -> None:
    conn = AuditLog(tmp_path / "a.sqlite")._connect()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync on every commit
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_records_are_append_only_through_sql(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.sqlite")
    fill(log, 3)
    raw = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("UPDATE audit_records SET kind = 'x' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("DELETE FROM audit_records WHERE seq = 3")
    assert log.verify().ok


NULLABLE = {"user_id", "trace_id", "span_id"}
TEXT_FIELDS = ["run_id", "ts", "kind", "user_id", "trace_id", "span_id", "prev_hash", "hash"]


@HYPO
@given(
    seq=st.integers(1, N),
    field=st.sampled_from(["seq", "data", *TEXT_FIELDS]),
    text=st.text(max_size=40),
    other=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    use_null=st.booleans(),
    respace=st.booleans(),
)
def test_altering_any_field_is_caught_at_that_record(
    template: Path, seq: int, field: str, text: str, other: dict[str, object], use_null: bool, respace: bool
) -> None:
    with tampered(template) as (raw, log):
        old = row(raw, seq)
        new: object
        if field == "seq":
            new = 10_000 + seq
        elif field == "data":
            # Either different content, or the same content serialised differently.
            new = json.dumps(json.loads(str(old["data"])), indent=1) if respace else canonical_json(other)
        elif field in NULLABLE and use_null and old[field] is not None:
            new = None
        else:
            new = text
        assume(new != old[field])
        raw.execute(f"UPDATE audit_records SET {field} = ? WHERE seq = ?", (new, seq))

        result = log.verify()
        assert not result.ok
        assert result.first_bad_seq == seq, result.reason
        assert str(seq) in result.reason
        with pytest.raises(AuditIntegrityError):
            result.raise_for_error()


@HYPO
@given(seq=st.integers(1, N - 1))
def test_deleting_a_middle_record_names_the_gap(template: Path, seq: int) -> None:
    with tampered(template) as (raw, log):
        raw.execute("DELETE FROM audit_records WHERE seq = ?", (seq,))
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, seq)
        assert result.reason == f"record {seq} is missing (seq gap {seq - 1} -> {seq + 1})"
        assert result.checked == seq - 1


@HYPO
@given(pair=st.lists(st.integers(1, N), min_size=2, max_size=2, unique=True))
def test_swapping_two_records_data_is_caught_at_the_first(template: Path, pair: list[int]) -> None:
    i, j = sorted(pair)
    with tampered(template) as (raw, log):
        di, dj = row(raw, i)["data"], row(raw, j)["data"]
        raw.execute("UPDATE audit_records SET data = ? WHERE seq = ?", (dj, i))
        raw.execute("UPDATE audit_records SET data = ? WHERE seq = ?", (di, j))
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, i)
        assert result.reason == f"record {i} was altered"


@HYPO
@given(n=st.integers(1, N))
def test_deleting_the_tail_is_caught_by_the_chain_head(template: Path, n: int) -> None:
    with tampered(template) as (raw, log):
        raw.execute("DELETE FROM audit_records WHERE seq > ?", (N - n,))
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, N - n + 1)
        assert result.reason.startswith(f"record {N - n + 1} is missing")


@HYPO
@given(seq=st.integers(1, N - 1))
def test_rehashed_record_breaks_the_link_to_the_next(template: Path, seq: int) -> None:
    with tampered(template) as (raw, log):
        old = row(raw, seq)
        data = {"forged": True}
        fields = {k: old[k] for k in ("seq", "run_id", "ts", "kind", "user_id", "trace_id", "span_id", "prev_hash")}
        forged = record_hash(**fields, data=data)  # type: ignore[arg-type]
        raw.execute("UPDATE audit_records SET data = ?, hash = ? WHERE seq = ?", (canonical_json(data), forged, seq))
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, seq + 1)
        assert result.reason == f"chain broken at {seq + 1}: prev_hash does not match record {seq}"


def test_truncation_with_rewritten_head_needs_an_external_anchor(template: Path) -> None:
    with tampered(template) as (raw, log):
        anchor = log.head()
        assert log.verify(anchor=anchor).ok
        last_kept = row(raw, 150)
        raw.execute("DELETE FROM audit_records WHERE seq > 150")
        raw.execute("UPDATE chain_head SET count = 150, last_hash = ?", (last_kept["hash"],))
        assert log.verify().ok  # the documented limit: indistinguishable without an anchor
        result = log.verify(anchor=anchor)
        assert (result.ok, result.first_bad_seq) == (False, 151)
        assert log.verify(anchor=ChainHead(100, str(row(raw, 100)["hash"]))).ok


def test_altered_head_is_caught(template: Path) -> None:
    with tampered(template) as (raw, log):
        raw.execute("UPDATE chain_head SET last_hash = ?", ("f" * 64,))
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, N)
        raw.execute("DELETE FROM chain_head")
        assert not log.verify().ok
        with pytest.raises(AuditIntegrityError, match="no chain head"):
            log.append("x", run_id="r")


# -- concurrency --------------------------------------------------------------------------------


def _append_many(path: str, worker: int, barrier: multiprocessing.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    log = AuditLog(path)
    barrier.wait()  # start together so the appends really interleave
    for i in range(50):
        log.append("step", {"worker": worker, "i": i}, run_id=f"w{worker}")
    log.close()


def test_concurrent_appends_from_four_processes_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "mp.sqlite"
    AuditLog(path).close()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_append_many, args=(str(path), w, barrier)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    log = AuditLog(path)
    result = log.verify()
    assert result.ok and result.checked == 200, result.reason
    for w in range(4):
        assert [r.data["i"] for r in log.records(f"w{w}")] == list(range(50))


# -- values -------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


class Hit(BaseModel):
    chunk_id: str
    score: float
    seen: datetime


@dataclasses.dataclass
class Cite:
    doc: Path
    page: int


def test_non_json_values_are_serialised(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.sqlite")
    when = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    uid = uuid.uuid4()
    data = {
        "hit": Hit(chunk_id="c1", score=0.5, seen=when),
        "cite": Cite(Path("/docs/a.pdf"), 3),
        "when": when,
        "amount": Decimal("1234.50"),
        "id": uid,
        "tags": {"b", "a"},
        "raw": b"\x00\xff",
        "color": Color.RED,
        "tuple_keys": {(1, 2): "x"},
        "gen": (i for i in range(2)),
        "other": object(),
    }
    rec = log.append("x", data, run_id="r")
    got = log.records("r")[0].data
    assert got == rec.data
    assert got["hit"] == {"chunk_id": "c1", "score": 0.5, "seen": "2025-01-02T03:04:05.000006Z"}
    assert got["cite"] == {"doc": "/docs/a.pdf", "page": 3}
    assert got["when"] == when.isoformat()
    assert (got["amount"], got["id"], got["tags"]) == ("1234.50", uid.hex, ["a", "b"])
    assert (got["raw"], got["color"], got["tuple_keys"]) == ({"base64": "AP8="}, "red", {"(1, 2)": "x"})
    assert got["gen"] == [0, 1] and got["other"].startswith("<object object")
    assert log.verify().ok


def test_run_ids_are_uuid7_hex() -> None:
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50
    for rid in ids:
        u = uuid.UUID(hex=rid)
        assert len(rid) == 32 and u.version == 7 and u.variant == uuid.RFC_4122
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert abs(int(ids[-1][:12], 16) - now_ms) < 60_000


# -- the recorder -------------------------------------------------------------------------------


@pytest.fixture
def spans() -> tuple[trace.Tracer, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def hexid(n: int, width: int) -> str:
    return format(n, f"0{width}x")


def test_recorder_links_spans_and_audit_records(
    tmp_path: Path, spans: tuple[trace.Tracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    log = AuditLog(tmp_path / "a.sqlite")
    with RunRecorder(log, user_id="alice", groups=["finance"], interface="cli", question="Q?", tracer=tracer) as rec:
        with rec.step("tool.search_documents", args={"query": "Q?", "k": 2}) as step:
            rec.record("plan", {"steps": ["search"]})  # nested: parent is the step's span
            step.result = {"chunks": ["c1", "c2"], "scores": [0.9, 0.7]}
            step.set_attribute("sovra.hits", 2)
        rec.model_call(model="qwen-7b", input_tokens=812, output_tokens=95, duration_ms=640.0)
        rec.finish(answer="42", citations=["c1"])

    got = by_name(exporter)
    root, search, plan, chat = got["sovra.run"], got["tool.search_documents"], got["plan"], got["chat qwen-7b"]
    assert root.parent is None and attrs(root)["sovra.run_id"] == rec.run_id
    assert search.parent.span_id == root.context.span_id  # type: ignore[union-attr]
    assert plan.parent.span_id == search.context.span_id  # type: ignore[union-attr]
    assert chat.parent.span_id == root.context.span_id  # type: ignore[union-attr]
    assert {s.context.trace_id for s in got.values()} == {root.context.trace_id}
    assert attrs(chat)["gen_ai.request.model"] == "qwen-7b"
    assert attrs(chat)["gen_ai.usage.input_tokens"] == 812
    assert attrs(chat)["gen_ai.usage.output_tokens"] == 95
    assert attrs(chat)["gen_ai.operation.name"] == "chat"
    assert (chat.end_time - chat.start_time) == 640_000_000  # type: ignore[operator]

    records = log.records(rec.run_id)
    assert [r.kind for r in records] == ["run.start", "plan", "tool.search_documents", "model.call", "run.end"]
    assert {r.trace_id for r in records} == {hexid(root.context.trace_id, 32)} == {rec.trace_id}
    span_of = {"run.start": root, "plan": plan, "tool.search_documents": search, "model.call": chat, "run.end": root}
    for r in records:
        assert r.span_id == hexid(span_of[r.kind].context.span_id, 16)
        assert r.user_id == "alice"
    assert attrs(search)["sovra.audit.seq"] == records[2].seq
    start, step_rec, end = records[0].data, records[2].data, records[-1].data
    assert start == {"user": "alice", "groups": ["finance"], "interface": "cli", "question": "Q?"}
    assert step_rec["args"] == {"query": "Q?", "k": 2}
    assert step_rec["result"] == {"chunks": ["c1", "c2"], "scores": [0.9, 0.7]}
    assert step_rec["attributes"] == {"sovra.hits": 2}
    assert step_rec["duration_ms"] >= 0 and "error" not in step_rec
    assert end == {"answer": "42", "citations": ["c1"]}
    assert records[3].data["input_tokens"] == 812
    assert log.verify().ok


def test_recorder_records_errors_and_reraises(tmp_path: Path, spans: tuple[trace.Tracer, InMemorySpanExporter]) -> None:
    tracer, exporter = spans
    log = AuditLog(tmp_path / "a.sqlite")
    rec = RunRecorder(log, user_id="bob", interface="api", question="q", tracer=tracer)
    with pytest.raises(ValueError, match="index is gone"), rec, rec.step("tool.search_documents", args={"query": "q"}):
        raise ValueError("index is gone")
    records = log.records(rec.run_id)
    assert [r.kind for r in records] == ["run.start", "tool.search_documents", "run.error"]
    assert records[1].data["error"] == {"type": "ValueError", "message": "index is gone"}
    assert records[1].data["result"] is None
    assert records[2].data == {"type": "ValueError", "message": "index is gone"}
    got = by_name(exporter)
    assert got["tool.search_documents"].status.status_code == StatusCode.ERROR
    assert got["sovra.run"].status.status_code == StatusCode.ERROR
    [summary] = log.runs()
    assert (summary.status, summary.steps, summary.user_id) == ("error", 1, "bob")


def test_steps_on_worker_threads_stay_in_the_run(
    tmp_path: Path, spans: tuple[trace.Tracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    log = AuditLog(tmp_path / "a.sqlite")
    with RunRecorder(log, user_id="u", interface="cli", question="q", tracer=tracer) as rec:

        def work() -> None:  # a fresh thread does not inherit the OTel context
            with rec.step("tool.t") as step:
                step.result = 1

        t = threading.Thread(target=work)
        t.start()
        t.join()
    got = by_name(exporter)
    assert got["tool.t"].parent.span_id == got["sovra.run"].context.span_id  # type: ignore[union-attr]
    assert [r.kind for r in log.records(rec.run_id)] == ["run.start", "tool.t", "run.end"]
    assert log.records(rec.run_id)[-1].data["finished"] is False


def test_runs_and_last_run_id(tmp_path: Path, spans: tuple[trace.Tracer, InMemorySpanExporter]) -> None:
    tracer, _ = spans
    log = AuditLog(tmp_path / "a.sqlite")
    assert log.last_run_id() is None and log.runs() == []
    ids = []
    for user, question, n in [("alice", "first", 2), ("bob", "second", 0), ("alice", "third", 1)]:
        with RunRecorder(log, user_id=user, interface="cli", question=question, tracer=tracer) as rec:
            for _ in range(n):
                with rec.step("tool.x"):
                    pass
            rec.finish(answer="a")
        ids.append(rec.run_id)
    assert log.last_run_id() == ids[-1]
    runs = log.runs()
    assert [(r.run_id, r.question, r.steps, r.status) for r in runs] == [
        (ids[2], "third", 1, "ok"),
        (ids[1], "second", 0, "ok"),
        (ids[0], "first", 2, "ok"),
    ]
    assert [r.run_id for r in log.runs(user_id="alice", limit=1)] == [ids[2]]
    assert runs[0].started.tzinfo is not None


def test_configure_tracing_is_idempotent_and_feeds_the_default_recorder(tmp_path: Path) -> None:
    provider = configure_tracing(in_memory=True)
    assert configure_tracing() is provider and configure_tracing(in_memory=True) is provider
    exporter = memory_exporter()
    assert exporter is not None and trace.get_tracer_provider() is provider
    exporter.clear()
    log = AuditLog(tmp_path / "a.sqlite")
    with RunRecorder(log, user_id="u", interface="cli", question="q") as rec:
        rec.finish(answer=None)
    [span] = exporter.get_finished_spans()
    assert span.name == "sovra.run" and log.records(rec.run_id)[0].trace_id == hexid(span.context.trace_id, 32)


def test_otlp_http_export_when_endpoint_is_set(tmp_path: Path) -> None:
    """A real local HTTP server stands in for the collector; the real OTLP exporter posts to it."""
    import http.server
    import os
    import subprocess
    import sys

    posts: list[tuple[str, int]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.path, len(body)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = (
        "from sovra.audit import AuditLog\n"
        "from sovra.recorder import RunRecorder\n"
        "from sovra.telemetry import configure_tracing\n"
        f"log = AuditLog({str(tmp_path / 'a.sqlite')!r})\n"
        "with RunRecorder(log, user_id='u', interface='cli', question='q') as r:\n"
        "    r.finish(answer='a')\n"
        "assert configure_tracing().force_flush(10_000)\n"
    )
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}"}
    try:
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    finally:
        server.shutdown()
    assert posts and posts[0][0] == "/v1/traces" and posts[0][1] > 0
