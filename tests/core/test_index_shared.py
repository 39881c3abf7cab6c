"""One embedded index, several processes: the first process to open the shard serves it, the others
use it through that process, and when it dies (kill -9) one of them takes the shard over with
everything that was written through either."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from core.test_index import DOCS, INFO, _points, _search

from sovra.index.edge import EdgeIndex, IndexInUseError
from sovra.index.shared import HostNotAnsweringError, SharedEdgeIndex

HOST = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path[:0] = [{tests!r}, {core!r}]
    from test_index import DOCS, INFO, _points
    from sovra.index.shared import SharedEdgeIndex
    idx = SharedEdgeIndex(Path({root!r}), "test")
    idx.ensure(INFO)
    acl, text = DOCS["pub-1"]
    idx.upsert(_points("pub-1", acl, text))
    print(idx.role, flush=True)
    time.sleep(600)
    """
)


def _host(root: Path) -> subprocess.Popen[str]:
    here = Path(__file__).resolve().parent
    code = HOST.format(tests=str(here.parent), core=str(here), root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "host"
    return proc


def test_a_second_process_works_through_the_first_and_takes_over_when_it_is_killed(tmp_path):
    host = _host(tmp_path)
    guest = SharedEdgeIndex(tmp_path, "test")
    try:
        assert guest.count() == 2  # the host's document, read through the host
        assert guest.role == "guest"
        acl, text = DOCS["fin-1"]
        guest.upsert(_points("fin-1", acl, text))  # written by the host, durable when it returns
        assert next(h.doc_id for h in _search(guest, text, ["group:finance"])) == "fin-1"
        address = tmp_path / "test.host.json"
        assert stat.S_IMODE(address.stat().st_mode) == 0o600  # the key is for the data dir's owner only
        assert json.loads(address.read_text())["pid"] == host.pid

        os.kill(host.pid, signal.SIGKILL)
        host.wait(timeout=30)
        assert guest.count() == 4  # nothing acknowledged was lost; this process now holds the shard
        assert guest.role == "host"
        assert json.loads(address.read_text())["pid"] == os.getpid()
    finally:
        if host.poll() is None:
            host.kill()
        guest.close()
    assert not (tmp_path / "test.host.json").exists()


def test_a_host_that_is_stopped_is_reported_not_waited_on_forever(tmp_path):
    host = _host(tmp_path)
    guest = SharedEdgeIndex(tmp_path, "test", call_timeout_s=1.5)
    try:
        assert guest.count() == 2 and guest.role == "guest"
        os.kill(host.pid, signal.SIGSTOP)  # alive, holding the shard's lock, answering nothing
        started = time.monotonic()
        with pytest.raises(HostNotAnsweringError, match=f"process {host.pid}.*'count' in 1.5 s"):
            guest.count()
        assert time.monotonic() - started < 10
        os.kill(host.pid, signal.SIGCONT)
        assert guest.count() == 2  # a new connection; the stopped call's late reply answers nothing
        acl, text = DOCS["fin-1"]
        guest.upsert(_points("fin-1", acl, text))
        assert guest.count() == 4
    finally:
        os.kill(host.pid, signal.SIGCONT)
        host.kill()
        host.wait(timeout=30)
        guest.close()


def test_a_plain_second_handle_is_refused_before_it_touches_the_holders_files(tmp_path):
    # qdrant-edge's own lock check comes after it has opened the holder's journals: a refused load used
    # to leave the holder unable to flush ("tracker journal is shorter than expected").
    first = EdgeIndex(tmp_path, "busy")
    first.ensure(INFO)
    acl, text = DOCS["pub-1"]
    first.upsert(_points("pub-1", acl, text))
    second = EdgeIndex(tmp_path, "busy")
    try:
        second.count()
    except IndexInUseError:
        pass
    else:
        raise AssertionError("a second handle opened a held shard")
    first.upsert(_points("pub-2", *DOCS["pub-2"]))
    assert first.count() == 4
    first.close()  # flushes cleanly
    assert second.count() == 4
    second.close()


def test_handles_in_one_process_share_the_index_and_closing_the_host_hands_it_over(tmp_path):
    a, b = SharedEdgeIndex(tmp_path, "test"), SharedEdgeIndex(tmp_path, "test")
    a.ensure(INFO)
    b.upsert(_points("pub-1", *DOCS["pub-1"]))
    assert (a.role, b.role) == ("host", "guest") and a.count() == 2
    a.close()
    assert b.count() == 2 and b.role == "host"
    b.close()
