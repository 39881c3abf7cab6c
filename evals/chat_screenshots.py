"""A screenshot of every screen of the chat, for docs/chat.md.

    python -m sovra.evals.chat_screenshots [--out docs/img]

`sovra ui` over a fresh demo bank (built into a temporary directory), driven by Playwright in
Debian's headless Chromium through the browser-test harness (``tests/browser_harness.py``: needs
the source checkout). The model is the vLLM fake from ``tests/fakes`` with scripted plans, answers
and one proposed action, so the pictures do not depend on a model's wording; retrieval, ACLs,
citations, the viewer, the ledger, approvals and the audit log are the real ones.

Screens: the login, the empty chat, an answer with citations, the document viewer at the cited
PDF page, a ledger citation as a table, an action waiting for approval, the compliance console,
and the viewer's refusal of a document the user may not read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
FEE_Q = "What are the monthly fee and the annual cap in the Acme Office Supplies contract?"
FEE_PLAN = {"search_query": "Acme monthly fee annual cap", "ledger_lookup": False, "counterparty": None, "year": None}
FEE_DRAFT = {
    "answer": "The monthly fee is EUR 8,500 [1] and the annual cap is EUR 120,000 [2].",
    "citations": [1, 2],
}
PAID_Q = "How much did we pay Acme Office Supplies in 2026?"
PAID_PLAN = {"search_query": "Acme payments", "ledger_lookup": True, "counterparty": "Acme", "year": 2026}
PAID_DRAFT = {"answer": "The 2026 payments to Acme Office Supplies are listed in the ledger [7].", "citations": []}
CASE_Q = "Acme Office Supplies was paid twice in March (EUR 8,500); open a case."
CASE_CALL = {
    "name": "open_case",
    "arguments": {
        "counterparty": "Acme Office Supplies GmbH",
        "summary": "Two payments of EUR 8,500 in March 2026 for the same monthly fee: check and recover one.",
        "amount": 8500,
    },
}
SCREENS = (
    "chat-login.png",
    "chat-empty.png",
    "chat-answer.png",
    "chat-viewer.png",
    "chat-ledger.png",
    "chat-approval.png",
    "chat-console.png",
    "chat-viewer-refused.png",
)


def _fake(script: list[Any]) -> Any:
    sys.path.insert(0, str(TESTS))
    from fakes.vllm_server import FakeVLLM, Reply

    replies = [Reply(tool_calls=[s]) if "name" in s else Reply(content=json.dumps(s)) for s in script]
    return FakeVLLM(script=replies)


def _pick(page: Any, label: str, option: str) -> None:
    from browser_harness import idle

    idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=re.compile(option, re.IGNORECASE)).first.click()
    idle(page)


def _chunk_of(data: Path, principal: str, name_part: str) -> str:
    """A chunk id of a document, read before the chat opens the index (one process at a time)."""
    from sovra.config import Settings
    from sovra.evals.demo_corpus import AS_OF
    from sovra.index import open_index
    from sovra.index.base import SearchFilter

    index = open_index(Settings(data_dir=data, as_of=AS_OF))
    try:
        hits = index.chunks(SearchFilter(principals=(principal,)))
    finally:
        index.close()
    return sorted(h.chunk_id for h in hits if name_part in h.url)[0]


def take(out: Path) -> list[Path]:
    from browser_harness import ask, chat_server, chromium, idle, sign_in

    from sovra.config import Settings
    from sovra.evals.demo_corpus import AS_OF
    from sovra.ui.commands import setup_demo

    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    def shot(page: Any, name: str, full: bool = False) -> None:
        # A rerun may start a moment after the click that caused it: settle, then wait for the
        # script run to end and transitions (dialog fade-in) to finish. A picture, not a test.
        page.wait_for_timeout(800)
        idle(page)
        page.wait_for_timeout(400)
        path = out / name
        page.screenshot(path=str(path), full_page=full)
        shots.append(path)
        print(f"saved {path}", flush=True)

    fake = _fake([FEE_PLAN, FEE_DRAFT, PAID_PLAN, PAID_DRAFT, CASE_CALL])
    try:
        with tempfile.TemporaryDirectory(prefix="sovra-screens-") as tmp:
            work = Path(tmp)
            data = work / "data"
            report = setup_demo(Settings(data_dir=data, as_of=AS_OF))
            if report.failed:
                raise SystemExit(f"the demo bank did not ingest: {report.failed}")
            secret = _chunk_of(data, "group:finance", "acme-office-supplies")
            env = {
                "SOVRA_AS_OF": str(AS_OF),
                "SOVRA_LLM_BASE_URL": fake.base_url,
                "SOVRA_LLM_MODEL": fake.base_model,
            }
            with chat_server(data, work, env) as url, chromium() as browser:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)
                page.get_by_text("DEVELOPMENT LOGIN.").wait_for(timeout=60_000)
                shot(page, "chat-login.png")
                sign_in(page, url, "bob")
                page.get_by_role("heading", name="Ask Sovra").wait_for(timeout=60_000)
                shot(page, "chat-empty.png")

                ask(page, FEE_Q)
                chip = page.get_by_role("button", name=re.compile(r"\[1\] "))
                chip.first.wait_for(timeout=300_000)
                page.get_by_test_id("stFeedback").first.wait_for(timeout=60_000)
                shot(page, "chat-answer.png")
                chip.first.click()
                page.get_by_role("dialog").locator("[data-testid=sovra-viewer]").wait_for(timeout=60_000)
                shot(page, "chat-viewer.png")
                page.keyboard.press("Escape")
                page.get_by_role("dialog").wait_for(state="hidden", timeout=30_000)

                ask(page, PAID_Q)
                ledger = page.get_by_role("button", name=re.compile("ledger row"))
                ledger.first.wait_for(timeout=300_000)
                idle(page)
                ledger.first.click()
                page.get_by_role("dialog").get_by_role("table").wait_for(timeout=60_000)
                shot(page, "chat-ledger.png")
                page.keyboard.press("Escape")
                page.get_by_role("dialog").wait_for(state="hidden", timeout=30_000)

                page.get_by_role("button", name="New conversation").click()
                idle(page)
                _pick(page, "Agent", "follow.?up")
                ask(page, CASE_Q)
                page.get_by_role("button", name=re.compile("Approve")).wait_for(timeout=300_000)
                shot(page, "chat-approval.png")

                console = browser.new_page(viewport={"width": 1400, "height": 900})
                sign_in(console, url, "erin")
                console.get_by_role("button", name=re.compile("Compliance console")).click()
                console.get_by_role("heading", name="Compliance console").wait_for(timeout=60_000)
                console.get_by_role("table").first.wait_for(timeout=60_000)
                shot(console, "chat-console.png")

                refused = browser.new_page(viewport={"width": 1400, "height": 600})
                sign_in(refused, f"{url}/?view={quote(secret, safe='')}", "alice")
                refused.get_by_text("This document is not available to you.").wait_for(timeout=60_000)
                shot(refused, "chat-viewer-refused.png")
    finally:
        fake.close()
    return shots


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args(argv)
    if not (TESTS / "browser_harness.py").is_file():
        raise SystemExit(f"needs the source checkout: {TESTS}/browser_harness.py not found")
    sys.path.insert(0, str(TESTS))
    from browser_harness import CHROMIUM

    if not Path(CHROMIUM).is_file():
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shots = take(args.out)
    missing = [s for s in SCREENS if args.out / s not in shots]
    if missing:
        raise SystemExit(f"screens not taken: {', '.join(missing)}")


if __name__ == "__main__":
    main()
