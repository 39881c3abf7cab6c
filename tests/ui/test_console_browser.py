"""The compliance console in a real browser: `sovra ui` over the demo bank with seeded runs, driven by
Playwright in Debian's headless Chromium (launched as the chat's browser test does).

An auditor searches runs, opens one as a timeline, verifies the chain, sees the usage plots and
downloads a signed bundle that verifies offline. A non-auditor who opens the page's address gets a
refusal, none of the runs, and the refusal is in the audit log."""

from __future__ import annotations

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

from sovra.audit import SYSTEM_RUN, AuditLog
from sovra.audit_sign import Signer
from sovra.config import Settings
from sovra.evals.bench_console import seed, seed_long_run
from sovra.ui.audit_bundle import verify_bundle

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEY = "22" * 32
SCREENS = Path(os.environ.get("SOVRA_SCREENSHOTS_DIR", "")) if os.environ.get("SOVRA_SCREENSHOTS_DIR") else None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed"),
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


@pytest.fixture(scope="module")
def console_url(demo_settings, tmp_path_factory) -> Iterator[tuple[str, Path, list[str]]]:
    tmp = tmp_path_factory.mktemp("console-ui")
    data = copy_demo_data(demo_settings, tmp / "data")
    settings = Settings(data_dir=data, audit_signing_key=KEY)
    ids = seed(settings, 120)
    ids.append(seed_long_run(settings, 50))
    port = _free_port()
    env = {
        **os.environ,
        "SOVRA_DATA_DIR": str(data),
        "SOVRA_AS_OF": str(demo_settings.as_of),
        "SOVRA_UI_DEV_LOGIN": "true",
        "SOVRA_AUDIT_SIGNING_KEY": KEY,
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp / "sovra-ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("sovra")), "ui", "--port", str(port)],
            env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, log)
        yield url, data, ids
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("sovra ui did not stop on SIGTERM")


def _sign_in(page, url: str, who: str) -> None:
    """Sign in on ``url`` (a reload starts a new session, so the address comes first)."""
    page.goto(url)
    page.get_by_text("DEVELOPMENT LOGIN.").wait_for(timeout=60_000)
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=re.compile(rf"\({who}\)")).click()
    page.get_by_role("button", name="Sign in (development)").click()
    page.get_by_role("button", name=re.compile("Log out")).wait_for(timeout=60_000)


def _idle(page) -> None:
    """Wait until the app has finished its script run (Streamlit shows a status widget while running)."""
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=120_000)


def _pick(page, label: str, option: str, tries: int = 3) -> None:
    """Choose ``option`` in the select box ``label``. A rerun still drawing the page (a loaded machine)
    can close the list or replace its options under the click: then open it again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        _idle(page)
        page.get_by_test_id("stSelectbox").filter(has_text=label).click()
        page.keyboard.type(option)  # the option list is virtual: narrow it first
        try:
            page.get_by_role("option", name=option).click(timeout=15_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")


def _shot(page, name: str) -> None:
    if SCREENS is not None:
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / name), full_page=True)


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.mark.timeout(1500)
def test_an_auditor_searches_opens_verifies_plots_and_exports(console_url, browser, tmp_path):
    url, data, ids = console_url
    page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    try:
        _auditor_session(page, url, ids)
    except Exception:
        page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)
        raise
    finally:
        page.close()
    with AuditLog(data / "audit.sqlite") as log:
        mine = [r for r in log.records(SYSTEM_RUN) if r.user_id == "erin"]
    assert {"console.open_run", "console.export", "console.verify"} <= {r.kind for r in mine}


def _auditor_session(page, url: str, ids: list[str]) -> None:
    _sign_in(page, url, "erin")
    page.get_by_role("button", name=re.compile("Compliance console")).click()
    page.get_by_role("heading", name="Compliance console").wait_for(timeout=60_000)
    table = page.get_by_role("table").first
    table.wait_for(timeout=60_000)
    assert "121 runs match" in page.get_by_text(re.compile(r"runs match")).inner_text()
    assert ids[-1] in table.inner_text()  # newest first: the 50-step run
    _shot(page, "console-runs.png")

    # Filter by a user (user01 owns the 50-step run): every row is theirs.
    _pick(page, "User", "user01")
    page.get_by_text(re.compile(r"\d+ runs match")).filter(has_not_text="121").wait_for(timeout=30_000)
    rows = page.get_by_role("table").first.locator("tbody tr")
    assert rows.count() > 0 and all("user01" in rows.nth(i).inner_text() for i in range(rows.count()))

    # Open the 50-step run as a timeline.
    page.get_by_label("…or a run id").fill(ids[-1])
    page.get_by_role("button", name="Open run").click()
    page.get_by_role("heading", name=f"Run {ids[-1]}").wait_for(timeout=60_000)
    # The heading comes first; the 50 steps below it are still being drawn (Streamlit sends the
    # page in pieces): wait for the last parts before reading it.
    main = page.get_by_test_id("stMain")
    for needle in ("sharepoint:01DOC0000#", "qwen2.5-7b+lora-policy", "Approval decision"):
        main.get_by_text(needle, exact=False).first.wait_for(timeout=60_000)
    body = main.inner_text()
    assert "Timeline" in body and "Tool search_documents" in body and "sharepoint:01DOC0000#" in body
    assert "qwen2.5-7b+lora-policy" in body and "Approval decision" in body
    _shot(page, "console-run.png")

    # A signed bundle of the run, downloaded, verifies offline with the audit key.
    page.get_by_role("button", name=re.compile("Export as a signed bundle")).click()
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name=re.compile("Download the signed bundle")).click()
    bundle = Path(dl.value.path()).read_bytes()
    check = verify_bundle(bundle, Signer.load(KEY).public_key_hex)
    assert check.ok and check.runs == 1 and check.records == 50, check

    # The chain.
    page.get_by_role("tab", name="Audit chain").click()
    page.get_by_role("button", name=re.compile("Verify the chain")).click()
    page.get_by_text(re.compile(r"Audit chain intact: [\d,]+ records verified")).wait_for(timeout=120_000)

    # Usage plots (Vega-Lite charts drawn in the page).
    page.get_by_role("tab", name="Usage").click()
    page.get_by_text("Most cited sources").first.wait_for(timeout=60_000)
    charts = page.get_by_test_id("stVegaLiteChart")
    charts.first.wait_for(timeout=60_000)
    assert charts.count() == 4
    assert page.locator("[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg").count() >= 4
    _shot(page, "console-usage.png")

    # Data protection: an auditor sees the requests, not the erasure form.
    page.get_by_role("tab", name="Data protection").click()
    page.get_by_text(re.compile("Retention and erasure are for the data-protection officer")).wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Erase the subject's content").count() == 0


@pytest.mark.timeout(600)
def test_a_non_auditor_is_refused_the_console_even_by_its_address(console_url, browser):
    url, data, ids = console_url
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    _sign_in(page, url, "alice")
    assert page.get_by_role("button", name=re.compile("Compliance console")).count() == 0
    _sign_in(page, f"{url}/?page=console", "alice")  # the page's address, typed in
    page.get_by_text(re.compile("alice may not use the compliance console")).wait_for(timeout=60_000)
    body = page.get_by_test_id("stMain").inner_text()
    assert not any(run_id in body for run_id in ids) and "runs match" not in body
    assert page.get_by_role("tab", name="Audit chain").count() == 0
    _shot(page, "console-refused.png")
    page.close()
    with AuditLog(data / "audit.sqlite") as log:
        denied = [r for r in log.records(SYSTEM_RUN) if r.kind == "console.denied"]
    assert denied and denied[-1].user_id == "alice"
