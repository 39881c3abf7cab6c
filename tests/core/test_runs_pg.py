"""The run store on PostgreSQL: several processes of one deployment start on a fresh database at once
(``sovra serve --workers N``) and each creates the checkpoint and run tables without tripping over
the others (concurrent CREATE TABLE IF NOT EXISTS fails with a duplicate pg_type row).

Runs only when SOVRA_TEST_POSTGRES_URL is set; the test gets its own schema, which stands for the
fresh database (the tables go where the connection's search_path points).
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from urllib.parse import quote

import pytest

URL = os.environ.get("SOVRA_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="SOVRA_TEST_POSTGRES_URL is not set")
N = 4


def _start(url: str, data: str, barrier: object, errors: object) -> None:
    from sovra.config import Settings
    from sovra.runs import RunStore

    barrier.wait()  # type: ignore[attr-defined]
    try:
        store = RunStore(Settings(data_dir=data, checkpoint_url=url))
        store.conn.close()
        store._saver_conn.close()
    except Exception as e:  # reported to the parent: a traceback in a child is easy to miss
        errors.put(f"{type(e).__name__}: {e}")  # type: ignore[attr-defined]


def test_workers_starting_together_on_a_fresh_database(tmp_path):
    import psycopg

    assert URL
    plain = URL.replace("+psycopg", "")
    schema = f"runs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in URL else "?"
    url = f"{URL}{sep}options={quote(f'-csearch_path={schema}')}"
    ctx = multiprocessing.get_context("spawn")
    barrier, errors = ctx.Barrier(N), ctx.Queue()
    procs = [ctx.Process(target=_start, args=(url, str(tmp_path / str(i)), barrier, errors)) for i in range(N)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=180)
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
        failures = []
        while not errors.empty():
            failures.append(errors.get())
        assert not failures, failures
        with psycopg.connect(plain, autocommit=True) as conn:
            tables = {
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
            }
        assert {"checkpoints", "checkpoint_writes", "checkpoint_blobs", "sovra_runs"} <= tables, tables
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
