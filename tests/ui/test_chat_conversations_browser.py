"""Conversations and the chat's everyday comfort in a real browser (tests/browser_harness.py: `sovra ui`
on a free port, Debian's headless Chromium, the development login), as alice and bob.

The agent is the model-free ``chat-test`` agent (tests/fakes/chat_agent.py, published through
SOVRA_AGENTS like any configured agent): the runtime, run table, audit log, conversation store,
login token and every page are the real ones; answers come in milliseconds, so the test is about
the chat, not the model.

alice: example question (from SOVRA_CHAT_EXAMPLES) asked by a click, Copy, Regenerate in the same
conversation, a page reload that stays signed in and reopens the conversation, a second
conversation, search, rename, delete. bob: alice's conversation address refused, his own list
without hers, a forged login token refused.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from browser_harness import CHROMIUM, ask, chat_server, chromium, idle, sign_in

from sovra.audit import AuditLog
from sovra.evals.demo_corpus import USERS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed"),
]

TESTS = Path(__file__).resolve().parents[1]
EXAMPLES = ["Who approves travel abroad?", "What is the hotel limit in London?"]
ANSWER = "capped at 250 EUR"


def params(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def pick_agent(page) -> None:
    """The picker shows plain titles: the test agent has none, so its name in words."""
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Ask about policies, contracts and payments").wait_for(timeout=30_000)
    assert page.get_by_role("option", name="assistant", exact=True).count() == 0  # no bare ids
    page.get_by_role("option", name="Chat test").click()
    idle(page)


def messages(page) -> list[str]:
    return [str(t) for t in page.get_by_test_id("stChatMessage").evaluate_all("els => els.map(e => e.innerText)")]


def wait_messages(page, n: int) -> list[str]:
    """The page once it shows ``n`` messages, the last answer drawn with its buttons (the rerun after
    a question is over)."""
    regenerate = page.get_by_role("button", name=re.compile("Regenerate"))
    regenerate.nth(n // 2 - 1).wait_for(timeout=60_000)
    idle(page)
    return messages(page)


def until(page, what, check, timeout_s: float = 60.0) -> None:
    """Poll the page until ``check()`` holds (a rerun's outcome shows a moment after the click)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed: {what}")
        page.wait_for_timeout(100)
    idle(page)


def empty_chat(page) -> bool:
    return not page.get_by_test_id("stChatMessage").count() and "c" not in params(page)


def titles(page) -> list[str]:
    return [x.split(" · ")[0] for x in sidebar_conversations(page)]


def sidebar_conversations(page) -> list[str]:
    """The sidebar's conversation buttons, read in one go (a rerun may replace them meanwhile)."""
    buttons = page.get_by_test_id("stSidebar").locator("[class*='st-key-conv-'] button")
    return [str(t) for t in buttons.evaluate_all("els => els.map(e => e.innerText)")]


@pytest.mark.timeout(900)
def test_conversations_examples_regenerate_reload_and_bob_refused(tmp_path):
    pytest.importorskip("playwright.sync_api")
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    env = {
        "PYTHONPATH": str(TESTS),
        "SOVRA_AGENTS": json.dumps({"chat-test": "fakes.chat_agent:CitedAgent"}),
        "SOVRA_CHAT_EXAMPLES": json.dumps(EXAMPLES),
    }
    with chat_server(data, tmp_path, env) as url, chromium() as browser:
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, permissions=["clipboard-read", "clipboard-write"]
        )
        page = context.new_page()
        try:
            alice_thread = _alice(page, url, tmp_path, data)
            _bob(browser, url, tmp_path, alice_thread)
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
            raise


def _alice(page, url: str, tmp_path: Path, data: Path) -> str:
    sign_in(page, url, "alice")
    token = params(page).get("login", "")
    assert re.fullmatch(r"[\w-]+\.\d+\.[0-9a-f]{64}", token) and "alice" not in token  # signed, not a name
    pick_agent(page)

    # The empty screen offers the configured examples; a click asks one.
    page.get_by_role("button", name=re.compile(re.escape(EXAMPLES[0]))).click()
    shown = wait_messages(page, 2)
    assert EXAMPLES[0] in shown[0] and ANSWER in shown[1], shown
    assert page.get_by_role("button", name=re.compile(re.escape(EXAMPLES[1]))).count() == 0
    thread = params(page)["c"]
    page.screenshot(path=str(tmp_path / "chat-conversation.png"))

    # Copy: the answer's text in a code block; Streamlit's copy button puts it on the clipboard.
    page.get_by_role("button", name=re.compile("Copy")).first.click()
    code = page.get_by_test_id("stCode").first
    code.wait_for(timeout=30_000)
    assert ANSWER in code.inner_text()
    code.hover()
    code.get_by_role("button", name="Copy to clipboard").click()
    copied = str(page.evaluate("navigator.clipboard.readText()"))
    assert ANSWER in copied and "Copy" not in copied, copied  # the answer's text, nothing around it
    page.keyboard.press("Escape")

    # Regenerate: the same question again, in the same conversation.
    page.get_by_role("button", name=re.compile("Regenerate")).first.click()
    shown = wait_messages(page, 4)
    assert EXAMPLES[0] in shown[2] and ANSWER in shown[3], shown
    assert params(page)["c"] == thread

    # A reload (a new Streamlit session): still alice, the conversation open again.
    page.reload()
    page.get_by_role("button", name=re.compile("Log out")).wait_for(timeout=60_000)
    shown = wait_messages(page, 4)
    assert page.get_by_text("DEVELOPMENT LOGIN.").count() == 0
    assert "Alice Martin" in page.get_by_test_id("stSidebar").inner_text()
    assert EXAMPLES[0] in shown[0] and EXAMPLES[0] in shown[2]

    # A second conversation; the list shows each conversation once, newest first.
    page.get_by_role("button", name=re.compile("New conversation")).click()
    until(page, "an empty chat without an address", lambda: empty_chat(page))
    pick_agent(page)
    ask(page, "What is the hotel limit in Paris?")
    wait_messages(page, 2)
    listed = sidebar_conversations(page)
    assert [x.split(" · ")[0] for x in listed] == ["What is the hotel limit in Paris?", EXAMPLES[0]], listed
    paris = params(page)["c"]
    assert paris != thread

    # Search.
    search = page.get_by_placeholder("Search titles and questions")
    search.fill("approves")
    search.press("Enter")
    until(page, "one match", lambda: titles(page) == [EXAMPLES[0]])
    search.fill("")
    search.press("Enter")
    until(page, "both conversations", lambda: len(titles(page)) == 2)

    # Rename the open (Paris) conversation, then delete it.
    page.get_by_role("button", name=re.compile("Rename or delete")).click()
    box = page.get_by_label("New title")
    box.fill("Paris trip")
    box.press("Enter")
    page.get_by_role("button", name=re.compile("^(edit)?Rename$")).click()
    until(page, "the new title", lambda: titles(page) == ["Paris trip", EXAMPLES[0]])
    if not page.get_by_role("button", name=re.compile("Delete conversation")).is_visible():
        page.get_by_role("button", name=re.compile("Rename or delete")).click()
    page.get_by_role("button", name=re.compile("Delete conversation")).click()
    until(page, "the list without it", lambda: titles(page) == [EXAMPLES[0]])
    until(page, "an empty chat without an address", lambda: empty_chat(page))
    page.screenshot(path=str(tmp_path / "chat-after-delete.png"))
    with AuditLog(data / "audit.sqlite") as log:
        kinds = [r.kind for r in log.records(paris)]
        assert kinds[-2:] == ["conversation.rename", "conversation.delete"], kinds
        assert log.verify().ok
    return thread


def _bob(browser, url: str, tmp_path: Path, alice_thread: str) -> None:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    sign_in(page, url, "bob")
    token = params(page)["login"]
    page.goto(f"{url}/?login={token}&c={alice_thread}")  # alice's conversation, by its address
    page.get_by_text("This conversation is not available to you.").wait_for(timeout=60_000)
    page.get_by_text("No conversations yet.").wait_for(timeout=60_000)  # the page drawn to its end
    page.get_by_placeholder("Ask a question about policies, contracts or payments").wait_for(timeout=60_000)
    idle(page)
    body = page.inner_text("body")
    assert "This conversation is not available to you." in body
    assert ANSWER not in body  # her answer is not shown (her question is also an example button here)
    assert messages(page) == [] and sidebar_conversations(page) == []
    page.screenshot(path=str(tmp_path / "chat-bob-refused.png"))
    # A token altered to stand for alice is refused: bob is sent back to the login.
    body_b64, expires, mac = token.split(".")
    alice_b64 = "YWxpY2U"  # base64url("alice")
    page.goto(f"{url}/?login={alice_b64}.{expires}.{mac}")
    page.get_by_text("DEVELOPMENT LOGIN.").wait_for(timeout=60_000)
    assert "please sign in again" in page.inner_text("body") and body_b64 != alice_b64
