"""The browser-test harness of tests/ui/test_streamlit_browser.py and test_console_browser.py as
importable helpers: `sovra ui` on a free port over a private copy of the demo bank, Debian's
headless Chromium driven by Playwright (no browser download), the development login.

Used by the viewer's browser test, the time-to-first-answer benchmark and the screenshot script.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUESTION_BOX = "Ask a question about policies, contracts or payments"


class HarnessError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"sovra ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling a server that is starting; nothing is timed by this
    raise HarnessError(f"sovra ui did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def chat_server(data_dir: Path, workdir: Path, env: Mapping[str, str]) -> Iterator[str]:
    """`sovra ui --port N` with the development login over ``data_dir``; yields its URL and stops it
    with SIGTERM (a question in flight finishes first)."""
    port = free_port()
    full = {
        **os.environ,
        "SOVRA_DATA_DIR": str(data_dir),
        "SOVRA_UI_DEV_LOGIN": "true",
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    log = workdir / "sovra-ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("sovra")), "ui", "--port", str(port)],
            env=full, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url, log)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise HarnessError("sovra ui did not stop on SIGTERM") from None


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, url: str, who: str) -> None:
    """Sign in on ``url`` (a reload starts a new session, so the address comes first)."""
    page.goto(url)
    page.get_by_text("DEVELOPMENT LOGIN.").wait_for(timeout=60_000)
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=re.compile(rf"\({who}\)")).click()
    page.get_by_role("button", name="Sign in (development)").click()
    page.get_by_role("button", name=re.compile("Log out")).wait_for(timeout=60_000)


def idle(page: Any, timeout_ms: int = 120_000) -> None:
    """Wait until the app has finished its script run (Streamlit shows a status widget while running)."""
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=timeout_ms)


def pick(page: Any, multiselect: Any, option: str, tries: int = 3) -> None:
    """Add ``option`` to a Streamlit multiselect: type it into the box key by key (BaseWeb opens and
    filters its list on key events) and press Enter, then check that its tag shows. Nothing depends
    on where the drop-down opens (a click on an option near the window's edge was lost in CI while
    the list was still moving); a rerun that redraws the box in between is retried."""
    for attempt in range(tries):
        idle(page)
        if option in multiselect.inner_text().split():
            return  # an earlier try picked it after all
        multiselect.click()  # focuses the box and opens the list
        box = multiselect.locator("input")
        box.press_sequentially(option, delay=30)
        try:
            page.get_by_role("option", name=option, exact=True).wait_for(timeout=15_000)
            box.press("Enter")
            # The picked option shows as a chip: the box's visible text (an input's value is not part
            # of it) then names it.
            for _ in range(50):
                if option in multiselect.inner_text().split():
                    break
                page.wait_for_timeout(200)
            else:
                raise AssertionError(f"{option!r} was not picked")
        except Exception:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            continue
        page.keyboard.press("Escape")
        return


def ask(page: Any, question: str) -> None:
    box = page.get_by_placeholder(QUESTION_BOX)
    box.wait_for(timeout=60_000)
    box.fill(question)
    box.press("Enter")
