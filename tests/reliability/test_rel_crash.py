"""Crash and restart: kill -9 in the middle of ingestion and of audit writes, then restart.

Each test starts a real child process, waits until it is provably half-way (rows in its state
or audit database, read from outside), kills it with SIGKILL, and checks that the next run
finishes the job: nothing lost, nothing duplicated, the audit chain valid.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sovra.audit import AuditLog
from sovra.chunking import chunk_pages
from sovra.documents import Page

pytestmark = pytest.mark.reliability

N_DOCS = 24
CHUNK_CHARS, OVERLAP = 400, 40


def _text(i: int) -> str:
    return f"Policy number {i} on topic {i * 7 % 11}. " + f"Clause {i}: staff must file report {i} monthly. " * (
        8 + i % 5
    )


INGEST_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sovra.documents import Document, Page
    from sovra.embeddings import Embedder
    from sovra.index.edge import EdgeIndex
    from sovra.ingest import Ingestor
    sys.path.insert(0, sys.argv[3])
    from test_rel_crash import N_DOCS, _text, CHUNK_CHARS, OVERLAP

    class Folder:
        name = "crashy"
        def documents(self):
            for i in range(N_DOCS):
                yield Document(id=f"d{i:02d}", title=f"Doc {i}", source="crashy", url=f"mem://d{i}",
                               version="1", acl=frozenset({"group:everyone"}),
                               load=lambda i=i: [Page(1, _text(i))])

    root, models = Path(sys.argv[1]), Path(sys.argv[2])
    index = EdgeIndex(root / "q", "c")
    ingestor = Ingestor(index, Embedder(None, models), root / "state.sqlite",
                        chunk_chars=CHUNK_CHARS, chunk_overlap=OVERLAP, batch_chunks=2)
    report = ingestor.run([Folder()])
    index.close()
    print(report.summary())
    """
)


def _state_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the table does not exist yet


def _run_child(code: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _kill_when(proc: subprocess.Popen[bytes], ready, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"child ended before the kill point: rc={proc.returncode}\n{err.decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("child never reached the kill point")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_kill_9_during_ingestion_then_rerun_loses_and_duplicates_nothing(tmp_path, model_cache, embedder):
    from sovra.index import SearchFilter
    from sovra.index.edge import EdgeIndex

    here = str(Path(__file__).parent)
    state = tmp_path / "state.sqlite"
    proc = _run_child(INGEST_CHILD, str(tmp_path), str(model_cache), here)
    _kill_when(proc, lambda: 3 <= _state_rows(state) < N_DOCS)
    done_before = _state_rows(state)
    assert 3 <= done_before < N_DOCS

    rerun = _run_child(INGEST_CHILD, str(tmp_path), str(model_cache), here)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err.decode()[-3000:]
    summary = out.decode()
    assert f"{done_before} unchanged" in summary, summary  # finished work is not redone
    assert _state_rows(state) == N_DOCS

    expected = sum(len(chunk_pages(f"d{i:02d}", [Page(1, _text(i))], CHUNK_CHARS, OVERLAP)) for i in range(N_DOCS))
    index = EdgeIndex(tmp_path / "q", "c")
    try:
        assert index.count() == expected  # no duplicate and no lost chunk
        everyone = SearchFilter(("group:everyone",))
        for i in (0, N_DOCS // 2, N_DOCS - 1):
            q = f"staff must file report {i} monthly"
            hits = index.search(embedder.embed_query(q), embedder.sparse_query(q), everyone, 50)
            assert f"d{i:02d}" in {h.doc_id for h in hits}
    finally:
        index.close()


AUDIT_CHILD = textwrap.dedent(
    """
    import sys
    from sovra.audit import AuditLog
    log = AuditLog(sys.argv[1])
    i = 0
    while True:
        log.append(run_id="r%06d" % (i // 5), kind="step", user_id="u", data={"i": i, "pad": "x" * 200})
        i += 1
    """
)


def _audit_count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM audit_records").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize("writers", [1, 3])
def test_kill_9_during_audit_writes_keeps_the_chain_valid(tmp_path, writers):
    path = tmp_path / "audit.sqlite"
    AuditLog(path).close()  # schema first, so the children race on appends only
    procs = [_run_child(AUDIT_CHILD, str(path)) for _ in range(writers)]
    try:
        _kill_when(procs[0], lambda: _audit_count(path) >= 300)
    finally:
        for p in procs[1:]:
            p.kill()
            p.wait()
    with AuditLog(path) as log:
        before = log.head().count
        result = log.verify()
        assert result.ok, result.reason
        assert result.checked == before >= 300
        # The store keeps working after the crash, on the same chain.
        log.append(run_id="after", kind="step", user_id="u", data={"ok": True})
        assert log.verify().ok and log.head().count == before + 1
