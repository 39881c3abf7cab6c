"""End to end with the real assistant: a Slack mention answered from the demo bank, with the bundled
model (llama.cpp) planning and the real index retrieving, over the real Bolt app and the Slack fake."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from conftest import copy_demo_data
from fakes.chat_agent import serve_asgi
from fakes.slack_api import FakeSlack, event_envelope, mention, signed_headers

from sovra.config import Settings
from sovra.ui.slack_bot import create_http_app

SECRET = "e2e-signing-secret-0123456789abcdef"


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.timeout(1800)  # the demo bank is built and ingested first when no other test did
def test_a_mention_is_answered_by_the_assistant_with_citations(demo_settings, tmp_path) -> None:
    data = copy_demo_data(demo_settings, tmp_path / "data")
    (data / "chat-identities.json").write_text(json.dumps({"slack": {"U0ALICE": "alice"}}))
    # A channel of alice and the bot: everyone in it may read what alice may, so the answer goes in the thread.
    slack = FakeSlack(channels={"C0E2E": ["U0ALICE", "U0SOVRABOT"]})
    settings = Settings(
        data_dir=data,
        as_of=demo_settings.as_of,
        slack_bot_token=slack.token,
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
    )
    app = create_http_app(settings)
    done: list[str] = []
    handled = threading.Event()

    def on_done(key: str, outcome: str) -> None:
        done.append(outcome)
        handled.set()

    app.state.bolt.sovra_bot.on_done = on_done
    try:
        with serve_asgi(app) as url:
            ev = mention(
                "U0ALICE", "How many days per week may I work from home?", channel="C0E2E", ts=f"{time.time():.6f}"
            )
            body = json.dumps(event_envelope(ev)).encode()
            r = httpx.post(url + "/slack/events", content=body, headers=signed_headers(SECRET, body), timeout=30)
            assert r.status_code == 200
            assert handled.wait(timeout=900)
            assert done == ["answered"], slack.thread("C0E2E", ev["ts"])
            [answer] = slack.thread("C0E2E", ev["ts"])
            sources = next(
                b["text"]["text"] for b in answer["blocks"] if b["type"] == "section" and "Sources" in b["text"]["text"]
            )
            assert "*[1]*" in sources and ("remote" in sources.lower() or "home" in sources.lower()), sources
            run_id = answer["blocks"][-1]["elements"][0]["text"].split("`")[1]
            assert len(run_id) >= 16
    finally:
        slack.close()
