"""The document viewer in a real browser (the harness of test_streamlit_browser.py, from
tests/browser_harness.py): `sovra ui` over the demo bank, Debian's headless Chromium.

bob opens the cited Acme contract (a PDF he may read) at the cited page with the passage
highlighted and turns the page; his payment question's ledger citation opens as a table of the
cited rows. alice forges the viewer's address for the same contract: the viewer checks her access
itself and refuses without naming the document; a document she may read opens by the same kind of
address (so the refusal is not a broken viewer).

The model is the faithful vLLM fake with scripted plans and answers; retrieval, ACLs, citations,
the ledger and the audit log are the real ones.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from browser_harness import CHROMIUM, ask, chat_server, chromium, idle, sign_in
from conftest import copy_demo_data
from fakes.vllm_server import FakeVLLM, Reply

from sovra.audit import SYSTEM_RUN, AuditLog
from sovra.index.base import SearchFilter

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed"),
]

FEE_Q = "What is the monthly fee in the Acme Office Supplies contract?"
PAID_Q = "How much did we pay Acme Office Supplies in 2026?"
FEE_PLAN = {"search_query": "Acme monthly fee", "ledger_lookup": False, "counterparty": None, "year": None}
FEE_DRAFT = {"answer": "The monthly fee is EUR 8,500 [1].", "citations": [1]}
PAID_PLAN = {"search_query": "Acme payments", "ledger_lookup": True, "counterparty": "Acme", "year": 2026}
# Every source cited: where the ledger lands among the sources depends on retrieval.
PAID_DRAFT = {"answer": "The 2026 payments to Acme are in the ledger [1] [2] [3] [4] [5] [6] [7].", "citations": []}


@pytest.fixture
def model() -> Iterator[FakeVLLM]:
    script = [FEE_PLAN, FEE_DRAFT, PAID_PLAN, PAID_DRAFT]
    fake = FakeVLLM(script=[Reply(content=json.dumps(x)) for x in script])
    yield fake
    fake.close()


def _chunk(rt, principal: str, name_part: str) -> str:
    hits = rt.services.index.chunks(SearchFilter(principals=(principal,)))
    return sorted(h.chunk_id for h in hits if name_part in h.url)[0]


@pytest.mark.timeout(1500)
def test_viewer_pdf_page_ledger_table_and_a_forged_address(demo_settings, demo_runtime, model, tmp_path):
    pytest.importorskip("playwright.sync_api")
    secret = _chunk(demo_runtime, "group:finance", "acme-office-supplies")  # finance and legal only
    readable = _chunk(demo_runtime, "group:employees", "greenleaf")
    data = copy_demo_data(demo_settings, tmp_path / "data")
    env = {
        "SOVRA_AS_OF": str(demo_settings.as_of),
        "SOVRA_LLM_BASE_URL": model.base_url,
        "SOVRA_LLM_MODEL": model.base_model,
    }
    with chat_server(data, tmp_path, env) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            _bob(page, url)
            _alice(browser.new_page(viewport={"width": 1400, "height": 1000}), url, secret, readable)
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
            raise
    with AuditLog(data / "audit.sqlite") as log:
        mine = [(r.kind, r.user_id, (r.data or {}).get("chunk_id")) for r in log.records(SYSTEM_RUN)]
    assert ("viewer.refused", "alice", secret) in mine
    assert ("viewer.open", "alice", readable) in mine
    assert any(k == "viewer.open" and u == "bob" for k, u, _ in mine)
    assert any(k == "viewer.ledger" and u == "bob" for k, u, _ in mine)


def _svg(drawn) -> str:
    src = drawn.locator("img").get_attribute("src") or ""
    assert src.startswith("data:image/svg+xml;base64,"), src[:60]
    return base64.b64decode(src.split(",", 1)[1]).decode()


def _bob(page, url: str) -> None:
    sign_in(page, url, "bob")
    ask(page, FEE_Q)
    chip = page.get_by_role("button", name=re.compile(r"\[1\] .*p\. \d+"))
    chip.first.wait_for(timeout=300_000)  # the first question loads the embedding model
    cited_page = int(re.search(r"p\. (\d+)", chip.first.inner_text()).group(1))
    idle(page)
    chip.first.click()
    dialog = page.get_by_role("dialog")
    drawn = dialog.locator("[data-testid=sovra-viewer]")
    drawn.wait_for(timeout=60_000)
    assert drawn.get_attribute("data-page") == str(cited_page)
    svg = _svg(drawn)  # the page image itself: the passage highlighted on it
    assert f'data-page="{cited_page}"' in svg and svg.count('class="sovra-highlight"') >= 1
    assert "Acme Office Supplies" in svg
    assert int(drawn.get_attribute("data-highlights") or 0) == svg.count('class="sovra-highlight"')
    assert f"Page {cited_page} of" in dialog.inner_text()
    assert f".pdf#page={cited_page}" in dialog.inner_text()  # the file address opens at the page
    # Turning the page: the next page is drawn, without the highlight, and the way back is offered.
    dialog.get_by_role("button", name=re.compile("Next page")).click()
    turned = dialog.locator(f'[data-testid=sovra-viewer][data-page="{cited_page + 1}"]')
    turned.wait_for(timeout=60_000)
    assert 'class="sovra-highlight"' not in _svg(turned)
    dialog.get_by_role("button", name=re.compile("Back to the cited page")).click()
    back = dialog.locator(f'[data-testid=sovra-viewer][data-page="{cited_page}"]')
    back.wait_for(timeout=60_000)
    assert 'class="sovra-highlight"' in _svg(back)
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden", timeout=30_000)

    ask(page, PAID_Q)
    ledger = page.get_by_role("button", name=re.compile(r"ledger row"))
    ledger.first.wait_for(timeout=300_000)
    idle(page)
    ledger.first.click()
    dialog = page.get_by_role("dialog")
    table = dialog.get_by_role("table")
    table.wait_for(timeout=60_000)
    text = table.inner_text()
    assert "amount" in text and "reference" in text and "2026-" in text
    rows = table.locator("tbody tr").count()
    n = int(re.search(r"(\d+) ledger row", ledger.first.inner_text()).group(1))
    assert rows == n >= 1, (rows, n)  # exactly the cited rows
    assert f"{rows} cited row(s)" in dialog.inner_text()
    page.keyboard.press("Escape")


def _alice(page, url: str, secret: str, readable: str) -> None:
    # The forged address: the restricted contract's chunk id, typed in after signing in.
    sign_in(page, f"{url}/?view={quote(secret, safe='')}", "alice")
    page.get_by_text("This document is not available to you.").wait_for(timeout=60_000)
    body = page.get_by_test_id("stMain").inner_text()
    assert "Acme" not in body and "data:image/svg" not in page.get_by_test_id("stMain").inner_html()
    assert page.locator("[data-testid=sovra-viewer]").count() == 0
    # The same kind of address to a document alice may read opens it, passage marked.
    sign_in(page, f"{url}/?view={quote(readable, safe='')}", "alice")
    viewer = page.locator("[data-testid=sovra-viewer]")
    viewer.wait_for(timeout=60_000)
    assert viewer.locator("mark").first.inner_text().strip()
    assert "Greenleaf" in page.get_by_test_id("stMain").inner_text()
    page.close()
