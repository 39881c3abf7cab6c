"""The Slack bot as Slack sees it: the real Bolt app served over HTTP on 127.0.0.1, signed Events
API and interactivity payloads, and the real slack_sdk WebClient posting to a faithful local fake of
the Slack Web API (tests/fakes/slack_api.py). The agent is a tiny deterministic LangGraph agent
(tests/fakes/chat_agent.py) run by the real runtime, so runs, approvals and the audit log are real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.chat_agent import DOC_URL, CitedAgent, Outcomes, index_cited_document, serve_asgi
from fakes.slack_api import (
    BOT_USER_ID,
    FakeSlack,
    SlackUser,
    block_actions_body,
    direct_message,
    event_envelope,
    mention,
    signed_headers,
)

from sovra.config import Settings
from sovra.runtime import Runtime
from sovra.ui.bot_common import ChatService, EventDedup
from sovra.ui.slack_bot import create_http_app

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
USERS = {
    "alice": {"name": "Alice Martin", "groups": ["employees"]},
    "bob": {"name": "Bob Schneider", "groups": ["employees", "finance"]},
    "carol": {"name": "Carol Dubois", "groups": ["employees"]},
    "mona": {"name": "Mona Manager", "groups": ["employees", "approvers"]},
    "nina": {"name": "Nina Newcomer", "groups": []},
    "fred": {"name": "Fred Finance", "groups": ["employees", "finance"]},
}
IDENTITIES = {
    "slack": {
        "U0ALICE": "alice",
        "U0BOB": "bob",
        "U0MONA": "mona",
        "U0NINA": "nina",
        "U0GHOST": "ghost",
        "U0FRED": "fred",
    },
    "email": {"carol@nordbank.example": "carol"},
}
CROWD = [f"U0F{i:03d}" for i in range(450)]  # finance colleagues, all mapped to fred
IDENTITIES["slack"].update({account: "fred" for account in CROWD})


class Bot:
    def __init__(self, url: str, slack: FakeSlack, outcomes: Outcomes, agent: CitedAgent, runtime: Runtime) -> None:
        self.url, self.slack, self.outcomes, self.agent, self.runtime = url, slack, outcomes, agent, runtime
        self.http = httpx.Client(base_url=url, timeout=30)

    def post_event(self, event: dict[str, Any], event_id: str | None = None, **headers: str) -> httpx.Response:
        body = json.dumps(event_envelope(event, event_id)).encode()
        return self.http.post("/slack/events", content=body, headers=signed_headers(SECRET, body) | headers)

    def click(self, user: str, action: str, value: str, message: dict[str, Any], channel: str) -> httpx.Response:
        body = block_actions_body(user, action, value, message, channel)
        headers = signed_headers(SECRET, body, content_type="application/x-www-form-urlencoded")
        return self.http.post("/slack/events", content=body, headers=headers)

    def answer_in(self, channel: str, ts: str) -> dict[str, Any]:
        """Wait until the message's answer is handled; the bot's last message in its thread."""
        self.outcomes.wait(f"{channel}:{ts}", 1)
        thread = self.slack.thread(channel, ts)
        assert thread, self.slack.summary()
        return thread[-1]


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    data = tmp_path_factory.mktemp("slack") / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    (data / "chat-identities.json").write_text(json.dumps(IDENTITIES))
    slack = FakeSlack(
        users={
            "U0CAROL": SlackUser("U0CAROL", "Carol Dubois", email="Carol@Nordbank.example"),
            "U0STRANGER": SlackUser("U0STRANGER", "Sam Stranger", email="sam@elsewhere.example"),
            "U0GUEST": SlackUser("U0GUEST", "Gus Guest", email="gus@partner.example"),
        },
        channels={
            **{
                c: [BOT_USER_ID, *members]
                for c, members in {
                    "C0ANSWER": ["U0ALICE"],
                    "C0RETRY": ["U0BOB"],
                    "C0NINA": ["U0NINA"],
                    "C0LIMIT": ["U0ALICE"],
                    "C0REJECT": ["U0BOB"],
                    "C0APPROVE": ["U0BOB", "U0ALICE", "U0MONA"],
                    "C0SHARED": ["U0ALICE", "U0GUEST"],
                    "C0PEERS": ["U0ALICE", "U0FRED"],
                    "C0MIXED": ["U0ALICE", "U0NINA"],
                    "C0OKAPPROVE": ["U0BOB", "U0FRED"],
                }.items()
            },
            # three pages of members (200 a page), the one guest on the last
            "C0CROWD": [BOT_USER_ID, "U0ALICE", *CROWD, "U0GUEST"],
        },
    )
    settings = Settings(
        data_dir=data, slack_bot_token=slack.token, slack_signing_secret=SECRET, slack_api_url=slack.base_url
    )
    index_cited_document(settings)  # the cited policy, readable by group:employees
    agent = CitedAgent()
    runtime = Runtime(settings, agents=agent.resolver)
    service = ChatService(settings, "slack", runtime=runtime, agent=agent)
    app = create_http_app(settings, service=service)
    outcomes = Outcomes()
    app.state.bolt.sovra_bot.on_done = outcomes
    with serve_asgi(app) as url:
        b = Bot(url, slack, outcomes, agent, runtime)
        yield b
        b.http.close()
    runtime.close()
    slack.close()


_last_ts = [0.0]
_ts_lock = threading.Lock()


def _ts() -> str:
    """A message timestamp, unique within the session: two messages built in the same microsecond
    (a coarse clock under load) would share a dedup key, and one would be answered as a duplicate."""
    with _ts_lock:
        _last_ts[0] = max(time.time(), _last_ts[0] + 1e-6)
        return f"{_last_ts[0]:.6f}"


def _texts(message: dict[str, Any]) -> str:
    """Every piece of text in a message's blocks (and its fallback text)."""
    parts = [message.get("text", "")]
    for b in message.get("blocks", []):
        if "text" in b:
            parts.append(b["text"]["text"])
        for e in b.get("elements", []):
            parts.append(e.get("text", "") if isinstance(e.get("text"), str) else e.get("text", {}).get("text", ""))
    return "\n".join(parts)


def test_mention_is_answered_in_its_thread_with_sources_and_run_id(bot: Bot) -> None:
    ev = mention("U0ALICE", "What is the hotel limit in London?", channel="C0ANSWER", ts=_ts())
    r = bot.post_event(ev)
    assert r.status_code == 200
    answer = bot.answer_in("C0ANSWER", ev["ts"])
    placeholder_posts = [c for c in bot.slack.calls_of("chat.postMessage") if c.args.get("channel") == "C0ANSWER"]
    assert len(placeholder_posts) == 1 and placeholder_posts[0].args["thread_ts"] == ev["ts"]
    assert answer["thread_ts"] == ev["ts"] and "edited" in answer  # the placeholder, replaced by the answer
    text = _texts(answer)
    assert "capped at 250 EUR" in text and "(asked by alice)" in text
    assert f"<{DOC_URL}|Travel &amp; Expenses Policy>, p. 3" in text  # a numbered, linked source with its page
    assert "*[2]* General ledger (`ledger://journal`), rows JE-1001, JE-1002" in text
    run_id = answer["blocks"][-1]["elements"][0]["text"].split("`")[1]
    records = bot.runtime.services.audit.records(run_id)
    start = next(r for r in records if r.kind == "run.start")
    assert start.user_id == "alice" and start.data["interface"] == "slack"


def test_the_event_is_acknowledged_before_the_answer_exists(bot: Bot) -> None:
    gate = threading.Event()
    bot.agent.gate = gate
    while bot.agent.started.acquire(blocking=False):  # forget the runs of earlier tests
        pass
    try:
        ev = direct_message("U0ALICE", "hotel limit?", channel="D0ACK", ts=_ts())
        r = bot.post_event(ev)
        # Slack has its 200 while the agent is still held inside its answer node.
        assert r.status_code == 200
        assert bot.agent.started.acquire(timeout=30)
        assert [m["text"] for m in bot.slack.thread("D0ACK", ev["ts"])] == ["Looking into it..."]
        gate.set()
        answer = bot.answer_in("D0ACK", ev["ts"])
        assert "capped at 250 EUR" in _texts(answer)
    finally:
        bot.agent.gate = None
        gate.set()


def test_forged_unsigned_and_stale_requests_are_rejected(bot: Bot) -> None:
    before = len(bot.slack.calls)
    body = json.dumps(event_envelope(mention("U0ALICE", "hi", channel="C0FORGED", ts=_ts()))).encode()
    forged = signed_headers("not-the-signing-secret", body)
    assert bot.http.post("/slack/events", content=body, headers=forged).status_code == 401
    tampered = signed_headers(SECRET, body)
    assert bot.http.post("/slack/events", content=body + b" ", headers=tampered).status_code == 401
    stale = signed_headers(SECRET, body, timestamp=int(time.time()) - 6 * 60)  # Bolt accepts 5 minutes
    assert bot.http.post("/slack/events", content=body, headers=stale).status_code == 401
    unsigned = bot.http.post("/slack/events", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert len(bot.slack.calls) == before  # nothing was posted, not even users.info
    assert bot.slack.thread("C0FORGED", "") == []


def test_slack_retries_of_an_event_produce_one_answer(bot: Bot) -> None:
    ev = mention("U0BOB", "hotel limit?", channel="C0RETRY", ts=_ts())
    first = bot.post_event(ev, event_id="Ev0RETRY01")
    retries = [
        bot.post_event(ev, "Ev0RETRY01", **{"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_timeout"})
        for n in (1, 2)
    ]
    assert [r.status_code for r in [first, *retries]] == [200, 200, 200]
    outcomes = bot.outcomes.wait(f"C0RETRY:{ev['ts']}", 3)
    assert sorted(outcomes) == ["answered", "duplicate", "duplicate"]
    posts = [c for c in bot.slack.calls_of("chat.postMessage") if c.args.get("channel") == "C0RETRY"]
    assert len(posts) == 1
    assert len(bot.slack.thread("C0RETRY", ev["ts"])) == 1


def test_the_dedup_store_survives_a_restart(tmp_path: Path) -> None:
    assert EventDedup(tmp_path / "e.sqlite").first_time("slack", "C1:1.0")
    assert not EventDedup(tmp_path / "e.sqlite").first_time("slack", "C1:1.0")
    assert EventDedup(tmp_path / "e.sqlite").first_time("teams", "C1:1.0")


def test_unknown_users_get_a_polite_refusal(bot: Bot) -> None:
    for user, channel in (("U0STRANGER", "C0WHO1"), ("U0NOBODY", "C0WHO2"), ("U0GHOST", "C0WHO3")):
        ev = mention(user, "hotel limit?", channel=channel, ts=_ts())
        assert bot.post_event(ev).status_code == 200
        reply = bot.answer_in(channel, ev["ts"])
        assert reply["text"].startswith("Sorry, I don't know who you are in Sovra yet"), reply
        assert user in reply["text"]
    # Unmapped accounts were looked up by their verified email (users.info); one was not found.
    looked_up = [(c.args.get("user"), c.response.get("error", "ok")) for c in bot.slack.calls_of("users.info")]
    assert ("U0STRANGER", "ok") in looked_up and ("U0NOBODY", "user_not_found") in looked_up
    assert "U0GHOST" not in [u for u, _ in looked_up]  # mapped (to a user the directory lacks): no lookup


def test_a_user_mapped_by_verified_email_is_answered_as_that_user(bot: Bot) -> None:
    ev = direct_message("U0CAROL", "hotel limit?", channel="D0CAROL", ts=_ts())
    bot.post_event(ev)
    assert "(asked by carol)" in _texts(bot.answer_in("D0CAROL", ev["ts"]))


def test_a_user_with_no_groups_is_answered(bot: Bot) -> None:
    ev = mention("U0NINA", "hotel limit?", channel="C0NINA", ts=_ts())
    bot.post_event(ev)
    assert "(asked by nina)" in _texts(bot.answer_in("C0NINA", ev["ts"]))


def test_oversized_messages_are_refused_clearly(bot: Bot) -> None:
    ev = mention("U0ALICE", "why " * 2500, channel="C0LONG", ts=_ts())
    bot.post_event(ev)
    reply = bot.answer_in("C0LONG", ev["ts"])
    assert "characters long; I can answer questions of up to 8,000 characters" in reply["text"]
    body = json.dumps(event_envelope(mention("U0ALICE", "x" * 300_000, channel="C0HUGE", ts=_ts()))).encode()
    huge = bot.http.post("/slack/events", content=body, headers=signed_headers(SECRET, body))
    assert huge.status_code == 413


def test_concurrent_messages_from_one_user_are_all_answered(bot: Bot) -> None:
    events = [direct_message("U0ALICE", f"hotel limit, question {i}?", channel="D0MANY", ts=_ts()) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda e: bot.post_event(e).status_code, events))
    assert codes == [200] * 4
    answers = [bot.answer_in("D0MANY", e["ts"]) for e in events]
    run_ids = {a["blocks"][-1]["elements"][0]["text"] for a in answers}
    assert len(run_ids) == 4 and all("capped at 250 EUR" in _texts(a) for a in answers)


def test_bot_messages_edits_and_channel_chatter_are_ignored(bot: Bot) -> None:
    # (The bot's own messages never reach the listener: Bolt drops them before acknowledging.)
    other_bot = direct_message("U0OTHERBOT", "beep", channel="D0SELF", ts=_ts()) | {"bot_id": "B0OTHER"}
    edit = direct_message("U0ALICE", "edited", channel="D0SELF", ts=_ts()) | {"subtype": "message_changed"}
    chatter = direct_message("U0ALICE", "lunch?", channel="C0CHATTER", ts=_ts()) | {"channel_type": "channel"}
    for ev in (other_bot, edit, chatter):
        assert bot.post_event(ev).status_code == 200
        assert bot.outcomes.wait(f"{ev['channel']}:{ev['ts']}", 1) == ["ignored"]
        assert bot.slack.thread(ev["channel"], ev["ts"]) == []


def test_rate_limited_posts_are_retried_after_retry_after(bot: Bot) -> None:
    bot.slack.rate_limit("chat.update", retry_after=1)
    ev = mention("U0ALICE", "hotel limit?", channel="C0LIMIT", ts=_ts())
    bot.post_event(ev)
    answer = bot.answer_in("C0LIMIT", ev["ts"])
    assert "capped at 250 EUR" in _texts(answer)
    updates = [c for c in bot.slack.calls_of("chat.update") if c.args.get("channel") == "C0LIMIT"]
    assert [c.status for c in updates] == [429, 200]


def _approval_message(bot: Bot, user: str, channel: str) -> tuple[dict[str, Any], str]:
    ev = mention(user, "please pay invoice INV-7", channel=channel, ts=_ts())
    bot.post_event(ev)
    msg = bot.answer_in(channel, ev["ts"])
    actions = next(b for b in msg["blocks"] if b["type"] == "actions")
    run_id = actions["elements"][0]["value"]
    assert [e["action_id"] for e in actions["elements"]] == ["sovra_approve", "sovra_reject"]
    assert "Approval needed* for `pay_invoice`" in _texts(msg) and "1,200 EUR" in _texts(msg)
    assert bot.runtime.pending_approval(run_id) is not None
    return msg, run_id


def _wait_thread_len(bot: Bot, channel: str, ts: str, n: int) -> list[dict[str, Any]]:
    bot.slack.wait_for(lambda s: len(s.thread(channel, ts)) >= n)
    return bot.slack.thread(channel, ts)


def test_an_approver_approves_with_the_button(bot: Bot) -> None:
    msg, run_id = _approval_message(bot, "U0BOB", "C0APPROVE")
    thread_ts = msg["thread_ts"]
    # Alice is neither the requester nor an approver: told so, and the buttons stay.
    assert bot.click("U0ALICE", "sovra_approve", run_id, msg, "C0APPROVE").status_code == 200
    refusal = _wait_thread_len(bot, "C0APPROVE", thread_ts, 2)[-1]
    assert "may not decide run" in refusal["text"] and refusal["text"].startswith("<@U0ALICE>")
    assert bot.runtime.pending_approval(run_id) is not None
    # Mona holds group:approvers.
    dms_before = len(bot.slack.direct_messages("U0BOB"))
    assert bot.click("U0MONA", "sovra_approve", run_id, msg, "C0APPROVE").status_code == 200
    result = _wait_thread_len(bot, "C0APPROVE", thread_ts, 3)[-1]
    # The resumed answer quotes the ledger (finance only): neither Mona nor Alice may read it, so the
    # thread says where it went and the answer reaches its owner, Bob, alone.
    assert "I sent <@U0BOB> the answer privately" in result["text"]
    channel_text = json.dumps([m for (c, _), m in bot.slack.messages.items() if c == "C0APPROVE"])
    assert "payment approved by mona" not in channel_text and "JE-1001" not in channel_text
    dm = bot.slack.direct_messages("U0BOB")[dms_before:]
    assert len(dm) == 1 and "Invoice INV-7 payment approved by mona." in _texts(dm[0])
    decided = bot.slack.messages[("C0APPROVE", msg["ts"])]
    assert not [b for b in decided["blocks"] if b["type"] == "actions"]
    assert "Approved by <@U0MONA>" in _texts(decided)
    decision = next(r for r in bot.runtime.services.audit.records(run_id) if r.kind == "approval.decision")
    assert decision.data["approver"] == "mona" and decision.data["approved"] is True
    assert bot.runtime.pending_approval(run_id) is None


def test_the_requester_rejects_with_the_button(bot: Bot) -> None:
    msg, run_id = _approval_message(bot, "U0BOB", "C0REJECT")
    bot.click("U0BOB", "sovra_reject", run_id, msg, "C0REJECT")
    result = _wait_thread_len(bot, "C0REJECT", msg["thread_ts"], 2)[-1]
    assert "payment refused (decided in Slack) by bob" in _texts(result)
    # A second click on the stale buttons is told the run was decided.
    bot.click("U0MONA", "sovra_approve", run_id, msg, "C0REJECT")
    late = _wait_thread_len(bot, "C0REJECT", msg["thread_ts"], 3)[-1]
    assert "is not waiting for approval" in late["text"]


def test_an_approved_answer_everyone_here_may_read_is_posted_in_the_thread(bot: Bot) -> None:
    msg, run_id = _approval_message(bot, "U0BOB", "C0OKAPPROVE")
    bot.click("U0FRED", "sovra_approve", run_id, msg, "C0OKAPPROVE")  # fred: not an approver, told so
    bot.click("U0BOB", "sovra_approve", run_id, msg, "C0OKAPPROVE")
    result = _wait_thread_len(bot, "C0OKAPPROVE", msg["thread_ts"], 3)[-1]
    assert "Invoice INV-7 payment approved by bob." in _texts(result)


# -- who may read an answer in a channel (issue 17) ------------------------------------------------


def _channel_text(bot: Bot, channel: str) -> str:
    return "\n".join(_texts(m) for (c, _), m in bot.slack.messages.items() if c == channel)


def test_an_answer_a_guest_may_not_read_goes_to_the_asker_alone(bot: Bot) -> None:
    ev = mention("U0ALICE", "What is the hotel limit in London?", channel="C0SHARED", ts=_ts())
    bot.post_event(ev)
    assert bot.outcomes.wait(f"C0SHARED:{ev['ts']}", 1) == ["private"]
    (note,) = bot.slack.thread("C0SHARED", ev["ts"])
    assert "I sent <@U0ALICE> the answer privately" in note["text"]
    channel = _channel_text(bot, "C0SHARED")
    assert "250 EUR" not in channel and "Travel" not in channel and "JE-1001" not in channel
    dm = bot.slack.direct_messages("U0ALICE")[-1]
    assert "capped at 250 EUR" in _texts(dm) and "JE-1001" in _texts(dm)
    opened = [c for c in bot.slack.calls_of("conversations.open") if c.args.get("users") == "U0ALICE"]
    assert opened and opened[-1].response["ok"]


def test_an_answer_every_member_may_read_stays_in_the_channel(bot: Bot) -> None:
    ev = mention("U0ALICE", "hotel limit?", channel="C0PEERS", ts=_ts())  # fred reads policy and ledger
    bot.post_event(ev)
    assert bot.outcomes.wait(f"C0PEERS:{ev['ts']}", 1) == ["answered"]
    assert "capped at 250 EUR" in _texts(bot.answer_in("C0PEERS", ev["ts"]))


def test_a_member_without_the_policy_group_keeps_the_answer_out_of_the_channel(bot: Bot) -> None:
    ev = mention("U0ALICE", "hotel limit?", channel="C0MIXED", ts=_ts())  # nina: no group at all
    bot.post_event(ev)
    assert bot.outcomes.wait(f"C0MIXED:{ev['ts']}", 1) == ["private"]
    assert "250 EUR" not in _texts(bot.answer_in("C0MIXED", ev["ts"]))


def test_every_page_of_members_is_checked(bot: Bot) -> None:
    ev = mention("U0ALICE", "hotel limit?", channel="C0CROWD", ts=_ts())
    bot.post_event(ev)
    assert bot.outcomes.wait(f"C0CROWD:{ev['ts']}", 1) == ["private"]
    pages = [c for c in bot.slack.calls_of("conversations.members") if c.args.get("channel") == "C0CROWD"]
    assert len(pages) == 3 and "250 EUR" not in _channel_text(bot, "C0CROWD")


def test_a_channel_whose_members_cannot_be_listed_gets_no_sources(bot: Bot) -> None:
    ev = mention("U0ALICE", "hotel limit?", channel="C0UNLISTED", ts=_ts())  # channel_not_found
    bot.post_event(ev)
    assert bot.outcomes.wait(f"C0UNLISTED:{ev['ts']}", 1) == ["private"]
    assert "250 EUR" not in _channel_text(bot, "C0UNLISTED")


def test_forged_button_clicks_are_rejected(bot: Bot) -> None:
    body = block_actions_body("U0MONA", "sovra_approve", "run-x", {"ts": "1.0", "text": "x"}, "C0X")
    headers = signed_headers("wrong-secret", body, content_type="application/x-www-form-urlencoded")
    assert bot.http.post("/slack/events", content=body, headers=headers).status_code == 401


def test_socket_mode_handler_is_constructed(tmp_path: Path) -> None:
    from sovra.ui.slack_bot import socket_handler

    slack = FakeSlack()
    try:
        (tmp_path / "users.json").write_text(json.dumps(USERS))
        settings = Settings(
            data_dir=tmp_path, slack_bot_token=slack.token, slack_app_token="xapp-1-test", slack_api_url=slack.base_url
        )
        service = ChatService(settings, "slack", agent=CitedAgent())
        handler = socket_handler(settings, service)
        assert handler.app_token == "xapp-1-test" and handler.client is not None
        service.close()
    finally:
        slack.close()


def test_misconfiguration_is_reported_before_serving(tmp_path: Path) -> None:
    from sovra.errors import ConfigError

    (tmp_path / "users.json").write_text(json.dumps(USERS))
    service = ChatService(Settings(data_dir=tmp_path), "slack", agent=CitedAgent())
    try:
        # HTTP mode without a signing secret would accept forged requests: refused.
        with pytest.raises(ConfigError, match="SOVRA_SLACK_SIGNING_SECRET"):
            create_http_app(Settings(data_dir=tmp_path, slack_bot_token="xoxb-1"), service=service)
        (tmp_path / "bad.json").write_text("{not json")
        with pytest.raises(ConfigError, match="not valid JSON"):
            ChatService(Settings(data_dir=tmp_path, chat_identities_file=tmp_path / "bad.json"), "slack")
    finally:
        service.close()


def test_an_unreachable_slack_api_or_a_refused_token_is_one_setup_error(tmp_path: Path) -> None:
    import socket

    from sovra.errors import ConfigError
    from sovra.ui.slack_bot import create_bolt_app

    (tmp_path / "users.json").write_text(json.dumps(USERS))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/api/"
    slack = FakeSlack()
    try:
        for url, token, reason in [(closed, slack.token, "refused"), (slack.base_url, "xoxb-wrong", "invalid_auth")]:
            settings = Settings(data_dir=tmp_path, slack_bot_token=token, slack_signing_secret="s", slack_api_url=url)
            service = ChatService(settings, "slack", agent=CitedAgent())
            try:
                with pytest.raises(ConfigError, match=f"could not check its token at {url}.*{reason}"):
                    create_bolt_app(service)
            finally:
                service.close()
    finally:
        slack.close()
