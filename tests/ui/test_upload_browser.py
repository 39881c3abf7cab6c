"""Uploads in a real browser (the harness of tests/browser_harness.py): alice uploads a small file
and asks about it and gets a citation to it; bob asks the same and neither his answer's sources nor
his sidebar show it; alice shares it with bob and his next answer cites it; alice removes it and
her next answer no longer cites it.

The model is the faithful vLLM fake with scripted plans and answers; parsing, indexing, retrieval,
the ACL and the audit log are the real ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_harness import CHROMIUM, ask, chat_server, chromium, idle, pick, sign_in
from conftest import copy_demo_data
from fakes.vllm_server import FakeVLLM, Reply

from sovra.audit import SYSTEM_RUN, AuditLog

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed"),
]

FILE = "heron-offsite.md"
FACT = "The Heron Lake offsite parking allowance is 37 EUR per day for every attendee."
QUESTION = "What is the Heron Lake offsite parking allowance per day?"
PLAN = {"search_query": "Heron Lake parking allowance", "ledger_lookup": False, "counterparty": None, "year": None}
DRAFT = {"answer": "The parking allowance is 37 EUR per day [1].", "citations": [1]}


@pytest.fixture
def model() -> Iterator[FakeVLLM]:
    fake = FakeVLLM(script=[Reply(content=json.dumps(x)) for x in [PLAN, DRAFT] * 4])
    yield fake
    fake.close()


def _chips(page) -> list[str]:
    """Every source chip of the conversation (cited and 'most relevant passages')."""
    return [b.inner_text() for b in page.get_by_test_id("stMain").get_by_role("button").all()]


def _answered(page) -> None:
    page.get_by_test_id("stFeedback").last.wait_for(timeout=300_000)  # the run is over
    idle(page)


# Tall enough that the sidebar's "Share with" list opens on screen: near the window's lower edge
# the list kept moving and a click on its option was lost (1100 px once the sidebar listed
# conversations too).
VIEWPORT = {"width": 1400, "height": 1800}


@pytest.mark.timeout(1500)
def test_alice_uploads_asks_and_removes_bob_never_sees_it(demo_settings, model, tmp_path):
    pytest.importorskip("playwright.sync_api")
    data = copy_demo_data(demo_settings, tmp_path / "data")
    upload = tmp_path / FILE
    upload.write_text(f"# Offsite notes\n\n{FACT}\n")
    env = {
        "SOVRA_AS_OF": str(demo_settings.as_of),
        "SOVRA_LLM_BASE_URL": model.base_url,
        "SOVRA_LLM_MODEL": model.base_model,
    }
    with chat_server(data, tmp_path, env) as url, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        try:
            # alice uploads the file and asks about it: the answer cites it
            sign_in(page, url, "alice")
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.locator("input[type=file]").set_input_files(str(upload))
            sidebar.get_by_text(f"{FILE} is ready: ask about it.").wait_for(timeout=300_000)
            ask(page, QUESTION)
            chip = page.get_by_role("button", name=re.compile(rf"\[1\] {re.escape(FILE)}"))
            chip.first.wait_for(timeout=300_000)  # the first question loads the embedding model
            _answered(page)
            page.screenshot(path=str(tmp_path / "alice-upload.png"))
            chip.first.click()  # the cited passage opens from her upload
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("37 EUR per day", exact=False).first.wait_for(timeout=60_000)
            page.keyboard.press("Escape")
            page.close()

            # bob asks the same: nothing of alice's file, in his sources or his sidebar
            page = browser.new_page(viewport=VIEWPORT)
            sign_in(page, url, "bob")
            ask(page, QUESTION)
            _answered(page)
            assert not [c for c in _chips(page) if FILE in c], _chips(page)
            assert FILE not in page.get_by_test_id("stSidebar").inner_text()
            page.screenshot(path=str(tmp_path / "bob-no-upload.png"))

            # alice shares it with bob: his next answer cites it
            alice = browser.new_page(viewport=VIEWPORT)
            sign_in(alice, url, "alice")
            panel = alice.get_by_test_id("stSidebar").get_by_test_id("stExpander").filter(has_text=FILE)
            panel.get_by_text(FILE).first.click()  # opens the file's panel
            pick(alice, panel.get_by_test_id("stMultiSelect"), "bob")
            panel.get_by_role("button", name="Save sharing").click()
            panel.get_by_text("Readable by: you, bob").wait_for(timeout=120_000)
            alice.screenshot(path=str(tmp_path / "alice-shares.png"))
            ask(page, QUESTION)
            page.get_by_role("button", name=re.compile(rf"\[1\] {re.escape(FILE)}")).first.wait_for(timeout=300_000)
            _answered(page)
            page.close()

            # alice removes it: gone from her files and from her next answer's sources
            page = alice
            panel.get_by_role("button", name=re.compile("Remove file")).click()
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_text(f"{FILE} was removed").wait_for(timeout=120_000)
            ask(page, QUESTION)
            _answered(page)
            assert not [c for c in _chips(page) if FILE in c], _chips(page)
        except Exception:
            for n, open_page in enumerate(p for c in browser.contexts for p in c.pages):
                open_page.screenshot(path=str(tmp_path / f"failed-{n}.png"), full_page=True)
            raise
    with AuditLog(data / "audit.sqlite") as log:
        mine = [(r.kind, r.user_id) for r in log.records(SYSTEM_RUN) if r.kind.startswith("upload.")]
    assert mine == [("upload.added", "alice"), ("upload.shared", "alice"), ("upload.removed", "alice")]
    assert not [p for p in (data / "uploads").iterdir() if p.is_dir()]
