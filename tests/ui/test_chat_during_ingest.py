"""One data dir, the chat and an ingest at once (issue 19): `sovra ui` answers in a real browser
while `sovra ingest` of another process is still writing to the same embedded index, and the
documents that ingest added are found by the running chat without a restart.

The model is the faithful vLLM fake with a scripted plan and answer per question (as in
test_streamlit_browser.py); retrieval, ACLs, citations and both processes' index are the real ones."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_harness import CHROMIUM, chat_server, chromium, sign_in
from conftest import copy_demo_data
from fakes.vllm_server import FakeVLLM, Reply

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]

SOVRA = str(Path(sys.executable).with_name("sovra"))
NEW_FACT = "The Quillfeather archive contract caps storage fees at 4,321 EUR per quarter."


def _plan(query: str) -> Reply:
    return Reply(
        content=json.dumps({"search_query": query, "ledger_lookup": False, "counterparty": None, "year": None})
    )


def _draft(text: str) -> Reply:
    return Reply(content=json.dumps({"answer": text, "citations": [1]}))


@pytest.fixture
def model() -> Iterator[FakeVLLM]:
    fake = FakeVLLM(
        script=[
            _plan("hotel limit per night London"),
            _draft("Hotel nights in London are capped at 250 EUR per night [1]."),
            _plan("hotel limit per night London"),
            _draft("Hotel nights in London are capped at 250 EUR per night [1]."),
            _plan("Quillfeather archive storage fees cap"),
            _draft("Storage fees are capped at 4,321 EUR per quarter [1]."),
        ]
    )
    yield fake
    fake.close()


def _corpus(folder: Path, n: int) -> None:
    """n notes for a long-enough ingest; the last holds the fact the second question asks."""
    folder.mkdir()
    for i in range(n):
        (folder / f"note-{i:03d}.md").write_text(
            f"# Archive note {i}\n\n" + " ".join(f"Routine archive record {i}.{j} kept for audit." for j in range(60))
        )
    (folder / "quillfeather-archive-contract.md").write_text(f"# Quillfeather archive contract\n\n{NEW_FACT}\n")


@pytest.mark.timeout(1500)
def test_the_chat_answers_during_an_ingest_and_finds_its_documents_without_a_restart(demo_settings, tmp_path, model):
    pytest.importorskip("playwright.sync_api")
    data = copy_demo_data(demo_settings, tmp_path / "data")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SOVRA_")},
        "SOVRA_DATA_DIR": str(data),
        "SOVRA_AS_OF": str(demo_settings.as_of),
        "SOVRA_UI_DEV_LOGIN": "true",
        "SOVRA_LLM_BASE_URL": model.base_url,
        "SOVRA_LLM_MODEL": model.base_model,
        "HF_HUB_OFFLINE": "1",
    }
    _corpus(tmp_path / "new-docs", 150)
    ingest: subprocess.Popen[str] | None = None
    with chat_server(data, tmp_path, env) as url, chromium() as browser:
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            sign_in(page, url, "alice")
            box = page.get_by_placeholder(re.compile("Ask a question"))
            box.wait_for(timeout=60_000)

            def ask(question: str, turn: int) -> str:
                box.fill(question)
                box.press("Enter")
                page.get_by_role("button", name=re.compile(r"\[1\] ")).nth(turn).wait_for(timeout=300_000)
                page.get_by_test_id("stFeedback").nth(turn).wait_for(timeout=60_000)  # the run is over
                return page.get_by_test_id("stChatMessage").nth(2 * turn + 1).inner_text()

            # The first question loads the embedding model, so the chat is warm before the ingest.
            assert "250" in ask("What is the hotel limit per night in London?", 0)
            ingest = subprocess.Popen(
                    [SOVRA, "ingest", str(tmp_path / "new-docs"), "--acl", "group:employees"],
                    env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                )  # fmt: skip
            # While the other process ingests, the chat still answers (its searches run beside the writes).
            time.sleep(3)
            assert ingest.poll() is None, "the ingest ended before the chat was asked; make it longer"
            assert "250" in ask("What is the hotel limit per night in London?", 1)
            answered_during_ingest = ingest.poll() is None
            output, _ = ingest.communicate(timeout=900)
            assert ingest.returncode == 0, output
            assert answered_during_ingest, "the chat answered only after the ingest had ended:\n" + output

            # No restart: the running chat finds what the other process added.
            answer = ask("What do the Quillfeather archive storage fees cap at?", 2)
            assert "4,321" in answer, answer
            page.get_by_role("button", name=re.compile(r"\[1\] ")).nth(2).click()
            dialog = page.get_by_role("dialog")
            dialog.locator("mark").first.wait_for(timeout=60_000)
            assert "Quillfeather" in dialog.inner_text()
        finally:
            if ingest is not None and ingest.poll() is None:
                ingest.kill()
