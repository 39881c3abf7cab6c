"""The chat in a real browser: `sovra ui` on a free port over the demo bank, driven by Playwright in
Debian's headless Chromium (no browser download). Saves screenshots; SOVRA_UPDATE_SCREENSHOTS=1
copies them to docs/img/.

The model is the faithful vLLM fake (tests/fakes/vllm_server.py) with a scripted plan and answer, so
the test does not depend on the bundled llama.cpp model's speed; retrieval, ACLs, citations, the
passage lookup and the audit log are the real ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import copy_demo_data
from fakes.vllm_server import FakeVLLM, Reply

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
QUESTION = "What is the hotel limit per night in London?"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sovra ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling a server that is starting; nothing is timed by this
    pytest.fail(f"sovra ui did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


PLAN = {"search_query": "hotel limit per night London", "ledger_lookup": False, "counterparty": None, "year": None}
DRAFT = {"answer": "Hotel nights in London are capped at 250 EUR per night [1].", "citations": [1]}


@pytest.fixture
def model() -> Iterator[FakeVLLM]:
    fake = FakeVLLM(script=[Reply(content=json.dumps(PLAN)), Reply(content=json.dumps(DRAFT))])
    yield fake
    fake.close()


@pytest.fixture
def chat_url(demo_settings, tmp_path, model) -> Iterator[str]:
    data = copy_demo_data(demo_settings, tmp_path / "data")
    port = _free_port()
    env = {
        **os.environ,
        "SOVRA_DATA_DIR": str(data),
        "SOVRA_AS_OF": str(demo_settings.as_of),
        "SOVRA_UI_DEV_LOGIN": "true",
        "SOVRA_LLM_BASE_URL": model.base_url,
        "SOVRA_LLM_MODEL": model.base_model,
        "HF_HUB_OFFLINE": "1",
    }
    sovra = Path(sys.executable).with_name("sovra")
    log = tmp_path / "sovra-ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(sovra), "ui", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, log)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)  # a question in flight finishes first
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("sovra ui did not stop on SIGTERM")


@pytest.mark.timeout(1500)  # includes building the demo bank when this is the session's first test
def test_ask_in_a_real_browser(chat_url, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(chat_url)
            page.get_by_text("DEVELOPMENT LOGIN.").wait_for(timeout=60_000)
            page.get_by_role("button", name="Sign in (development)").click()  # the first user: alice
            box = page.get_by_placeholder("Ask a question about policies, contracts or payments")
            box.wait_for(timeout=60_000)
            box.fill(QUESTION)
            box.press("Enter")
            # A chip's accessible name starts with its icon's ligature ("description[1] ...").
            chip = page.get_by_role("button", name=re.compile(r"\[1\] "))
            try:
                chip.first.wait_for(timeout=300_000)  # the first question loads the embedding model
            except playwright.TimeoutError:
                page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
                raise
            answer = page.get_by_test_id("stChatMessage").nth(1).inner_text()
            assert "250" in answer, answer
            page.get_by_test_id("stFeedback").first.wait_for(timeout=30_000)  # the run is over
            page.screenshot(path=str(tmp_path / "chat.png"))
            page.get_by_text("How this answer was made").click()
            hits = page.get_by_role("table").first  # retrieved chunk ids with scores
            hits.wait_for(timeout=30_000)
            assert "#" in hits.inner_text() and "score" in hits.inner_text()
            page.screenshot(path=str(tmp_path / "chat-audit.png"))

            chip.first.click()
            dialog = page.get_by_role("dialog")
            dialog.locator("mark").first.wait_for(timeout=60_000)
            assert "Cited passage" in dialog.inner_text()
            assert dialog.locator("mark").first.inner_text().strip()
            page.screenshot(path=str(tmp_path / "chat-passage.png"))
        finally:
            browser.close()
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    # The README's screenshots are refreshed only on request: a test run must not edit the checkout.
    if os.environ.get("SOVRA_UPDATE_SCREENSHOTS") == "1":
        for name in ("chat.png", "chat-passage.png", "chat-audit.png"):
            shutil.copyfile(tmp_path / name, DOCS_IMG / name)
