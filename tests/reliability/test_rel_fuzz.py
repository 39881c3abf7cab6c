"""Fuzzing: mutated documents into the parsers, random requests into every API operation.

Parsers: real files of every supported kind (from the demo bank, plus generated CSV/XLSX) are
truncated, bit-flipped and spliced by hypothesis. Each input must give pages or one
``SovraError`` (never another exception), with bounded memory.

API: every operation of the OpenAPI schema gets random JSON bodies, path values, query strings
and Authorization headers. No answer may be a 500 or leak a traceback, and every error is JSON.
"""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sovra.connectors.parsers import parse_bytes
from sovra.documents import Page
from sovra.errors import SovraError

pytestmark = pytest.mark.reliability

MAX_PEAK_BYTES = 256 * 1024 * 1024


def _seed_files(corpus: Path) -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}
    for ext in (".pdf", ".docx", ".html", ".md"):
        found = sorted(p for p in corpus.rglob(f"*{ext}") if p.stat().st_size < 400_000)
        if found:
            seeds[ext] = found[0].read_bytes()
    seeds[".csv"] = b"account,amount,date\n4000,1200.50,2026-01-31\n4010,-80,2026-02-01\n"
    try:
        from openpyxl import Workbook

        wb = Workbook()
        wb.active.append(["account", "amount"])
        wb.active.append(["4000", 1200.5])
        buf = io.BytesIO()
        wb.save(buf)
        seeds[".xlsx"] = buf.getvalue()
    except ImportError:
        pass
    return seeds


@pytest.fixture(scope="module")
def seeds(demo_settings) -> dict[str, bytes]:
    s = _seed_files(demo_settings.paths.corpus)
    assert {".pdf", ".docx", ".html"} <= set(s), sorted(s)
    for ext, data in s.items():  # every seed parses before it is mutated
        assert parse_bytes(data, f"seed{ext}"), ext
    return s


@st.composite
def mutated(draw, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    ext = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[ext])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "truncate", "splice", "zero", "dup"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[i:]
        elif op == "splice":
            data[i:i] = draw(st.binary(min_size=1, max_size=64))
        elif op == "zero":
            data[i : i + draw(st.integers(1, 512))] = b"\0" * min(512, len(data) - i)
        else:
            j = draw(st.integers(i, min(len(data), i + 4096)))
            data[j:j] = data[i:j]
    return ext, bytes(data)


@pytest.mark.slow
def test_mutated_documents_give_pages_or_one_clear_error(seeds):
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=mutated(seeds))
    def check(case: tuple[str, bytes]) -> None:
        ext, data = case
        tracemalloc.start()
        try:
            pages = parse_bytes(data, f"fuzz{ext}")
        except SovraError:
            pages = []
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert all(isinstance(p, Page) and isinstance(p.text, str) for p in pages)
        assert peak < MAX_PEAK_BYTES, f"{ext}: {peak / 1e6:.0f} MB for a {len(data)} byte file"

    check()


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["a.pdf", "b.docx", "c.xlsx", "d.html", "e.md", "f.csv", "g.txt"]), data=st.binary())
def test_random_bytes_under_any_name_are_a_clear_error_or_text(name, data):
    try:
        pages = parse_bytes(data, name)
    except SovraError as exc:
        assert exc.message
        return
    assert all(isinstance(p.text, str) for p in pages)


# ---------------------------------------------------------------------------------------------
# API


class _StubAgent:
    """Answers instantly so the fuzzer exercises the API, not the model."""

    name = "stub"
    description = "test stub"

    def graph(self):
        from langgraph.graph import END, START, StateGraph

        from sovra.agents.assistant import State

        g = StateGraph(State)
        g.add_node("reply", lambda state: {"answer": "ok", "status": "not_found", "citations": []})
        g.add_edge(START, "reply")
        g.add_edge("reply", END)
        return g

    def to_answer(self, state, base):
        base.text, base.status = state.get("answer", ""), state.get("status", "not_found")
        return base


TOKEN = "fuzz-token-0123456789abcdef"


@pytest.fixture(scope="module")
def api(demo_settings, tmp_path_factory):
    from conftest import copy_demo_data
    from fastapi.testclient import TestClient

    from sovra.config import Settings
    from sovra.ui.api import create_app

    data = copy_demo_data(demo_settings, tmp_path_factory.mktemp("fuzz") / "data")
    app = create_app(Settings(data_dir=data), {TOKEN: "alice"}, agents={"stub": _StubAgent})
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app.openapi()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def bodies(draw) -> object:
    base = draw(st.dictionaries(st.sampled_from(["question", "agent", "thread_id", "messages", "model",
                                                 "stream", "approved", "reason", "user", "x"]), json_values,
                                max_size=5))  # fmt: skip
    return draw(st.sampled_from([base, draw(json_values), {"question": draw(st.text(max_size=50))}]))


@pytest.mark.slow
def test_no_api_input_causes_a_500_or_a_traceback(api):
    client, schema = api
    operations = [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m in {"get", "post", "delete"}]
    assert len(operations) >= 5, operations

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        op=st.sampled_from(operations),
        path_value=st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s and "?" not in s and "#" not in s),
        body=bodies(),
        raw=st.booleans(),
        auth=st.sampled_from([f"Bearer {TOKEN}", "", "Bearer ", "Bearer x" * 50, "Basic abc", f"bearer {TOKEN}"]),
    )
    def check(op, path_value, body, raw, auth):
        method, path = op
        url = path
        for part in [seg for seg in path.split("/") if seg.startswith("{")]:
            url = url.replace(part, quote(path_value, safe=""))  # any text, percent-encoded as a client would
        headers = {"Authorization": auth} if auth else {}
        if method == "GET":
            r = client.get(url, headers=headers)
        else:
            content = json.dumps(body).encode() if not raw else json.dumps(body).encode()[:-1]
            r = client.request(method, url, content=content, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code < 500 or r.status_code == 503, (method, url, r.status_code, r.text[:300])
        assert "Traceback" not in r.text
        if r.status_code >= 400:
            assert r.headers.get("content-type", "").startswith("application/json"), (url, r.text[:200])

    check()
