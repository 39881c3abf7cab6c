"""The Teams bot as the Bot Connector sees it: the real FastAPI app with the Microsoft 365 Agents
SDK's CloudAdapter, served on 127.0.0.1; Teams-shaped activities posted with RS256 tokens from a
local issuer (OpenID metadata + JWKS); replies going through the SDK's connector client to a
faithful local fake of the Bot Connector REST API and the Entra token endpoint
(tests/fakes/teams_connector.py). The agent is the deterministic test agent, run by the real runtime.
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
import jwt
import pytest
from fakes.chat_agent import DOC_URL, CitedAgent, Outcomes, index_cited_document, serve_asgi
from fakes.teams_connector import FakeBotFramework, Posted, card_action, member, message, person

from sovra.config import Settings
from sovra.errors import SovraError
from sovra.runtime import Runtime
from sovra.ui.bot_common import ChatService
from sovra.ui.teams_bot import create_app

APP_ID = "00000000-1111-2222-3333-444455556666"
APP_PASSWORD = "test-client-secret-do-not-use"
USERS = {
    "alice": {"name": "Alice Martin", "groups": ["employees"]},
    "bob": {"name": "Bob Schneider", "groups": ["employees", "finance"]},
    "mona": {"name": "Mona Manager", "groups": ["employees", "approvers"]},
    "nina": {"name": "Nina Newcomer", "groups": []},
    "fred": {"name": "Fred Finance", "groups": ["employees", "finance"]},
}
IDENTITIES = {
    "teams": {"aad-alice": "alice", "aad-bob": "bob", "aad-mona": "mona", "aad-nina": "nina", "aad-fred": "fred"},
}
ALICE, BOB, MONA, NINA = (person(f"aad-{u}", USERS[u]["name"]) for u in ("alice", "bob", "mona", "nina"))
M = {u: member(f"aad-{u}", USERS[u]["name"]) for u in USERS}
GUEST = member("aad-guest", "Gus Guest", email="gus@partner.example", role="guest")
ROSTERS = {
    "19:shared@thread.v2": [M["alice"], GUEST],
    "19:peers@thread.v2": [M["alice"], M["fred"]],
    "19:approve@thread.v2": [M["bob"], M["mona"], M["alice"]],
    "19:submit@thread.v2": [M["bob"], M["mona"]],
    "19:crowd@thread.v2": [M["alice"], *[M["fred"]] * 1100, GUEST],  # three pages of 500, the guest last
}


class Teams:
    def __init__(self, url: str, fake: FakeBotFramework, outcomes: Outcomes, agent: CitedAgent, rt: Runtime) -> None:
        self.fake, self.outcomes, self.agent, self.runtime = fake, outcomes, agent, rt
        self.http = httpx.Client(base_url=url, timeout=30)

    def post(self, activity: dict[str, Any], token: str | None = "mint") -> httpx.Response:
        headers = {}
        if token == "mint":
            token = self.fake.mint(activity["serviceUrl"])
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.post("/api/messages", json=activity, headers=headers)

    def answer(self, activity: dict[str, Any]) -> Posted:
        """Wait until the activity was handled; the last message the bot replied to it with."""
        self.outcomes.wait(f"{activity['conversation']['id']}:{activity['id']}")
        replies = self.fake.replies_to(activity["id"])
        assert replies, self.fake.posted
        return replies[-1]


@pytest.fixture(scope="module")
def teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Teams]:
    data = tmp_path_factory.mktemp("teams") / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps(USERS))
    (data / "chat-identities.json").write_text(json.dumps(IDENTITIES))
    fake = FakeBotFramework(APP_ID, APP_PASSWORD)
    fake.rosters.update(ROSTERS)
    settings = Settings(
        data_dir=data,
        teams_app_id=APP_ID,
        teams_app_password=APP_PASSWORD,
        teams_openid_metadata_url=fake.metadata_url,
        teams_token_url=fake.token_url,
    )
    index_cited_document(settings)  # the cited policy, readable by group:employees
    agent = CitedAgent()
    runtime = Runtime(settings, agents=agent.resolver)
    service = ChatService(settings, "teams", runtime=runtime, agent=agent)
    app = create_app(settings, service=service)
    outcomes = Outcomes()
    app.state.bot.on_done = outcomes
    with serve_asgi(app) as url:
        t = Teams(url, fake, outcomes, agent, runtime)
        yield t
        t.http.close()
    runtime.close()
    fake.close()


def _card(p: Posted) -> dict[str, Any]:
    [attachment] = p.activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def _card_text(card: dict[str, Any]) -> str:
    return "\n".join(b.get("text", "") for b in card["body"] if b["type"] == "TextBlock")


def test_a_question_is_answered_with_an_adaptive_card_and_citations(teams: Teams) -> None:
    a = message(teams.fake, ALICE, "What is the hotel limit in London?", "a:conv-answer")
    r = teams.post(a)
    assert r.status_code == 202
    reply = teams.answer(a)
    assert reply.method == "POST" and reply.path.endswith(f"/v3/conversations/a:conv-answer/activities/{a['id']}")
    assert reply.activity["replyToId"] == a["id"] and reply.activity["recipient"]["id"] == ALICE["id"]
    card = _card(reply)
    text = _card_text(card)
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert "capped at 250 EUR [1]; Acme" in text and "(asked by alice)" in text
    assert f"**[1]** [Travel & Expenses Policy]({DOC_URL}), p. 3" in text
    assert "**[2]** General ledger (ledger://journal), rows JE-1001, JE-1002" in text
    run_id = text.rsplit("Audit run ", 1)[1].strip()
    start = next(r for r in teams.runtime.services.audit.records(run_id) if r.kind == "run.start")
    assert start.user_id == "alice" and start.data["interface"] == "teams"
    # The reply was authorised with a token from the client-credentials grant.
    form = teams.fake.token_requests[0]
    assert form["grant_type"] == "client_credentials" and form["client_id"] == APP_ID
    assert form["scope"] == "https://api.botframework.com/.default"
    assert reply.authorization[7:] in teams.fake.issued


def test_the_activity_is_acknowledged_before_the_answer_exists(teams: Teams) -> None:
    gate = threading.Event()
    teams.agent.gate = gate
    while teams.agent.started.acquire(blocking=False):
        pass
    try:
        a = message(teams.fake, ALICE, "hotel limit?", "a:conv-ack")
        assert teams.post(a).status_code == 202  # while the agent is held inside its answer node
        assert teams.agent.started.acquire(timeout=30)
        assert [p.activity["type"] for p in teams.fake.posted if p.reply_to == a["id"]] == ["typing"]
        gate.set()
        assert "capped at 250 EUR" in _card_text(_card(teams.answer(a)))
    finally:
        teams.agent.gate = None
        gate.set()


def _hs256_with_public_key(teams: Teams, service_url: str) -> str:
    # The classic confusion attack: sign HS256 with the issuer's public key as the HMAC secret.
    from cryptography.hazmat.primitives import serialization

    pem = teams.fake.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = teams.fake.claims(service_url)
    header = {"alg": "HS256", "typ": "JWT", "kid": teams.fake.kid}
    import base64
    import hashlib
    import hmac

    def b64(d: bytes) -> bytes:
        return base64.urlsafe_b64encode(d).rstrip(b"=")

    signing = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(payload).encode())
    return (signing + b"." + b64(hmac.new(pem, signing, hashlib.sha256).digest())).decode()


def test_unauthenticated_forged_and_misdirected_requests_are_rejected(teams: Teams) -> None:
    fake = teams.fake
    a = message(fake, ALICE, "hotel limit?", "a:conv-forged")
    url = a["serviceUrl"]
    now = int(time.time())
    bad_tokens = {
        "no header": None,
        "not a jwt": "abc.def",
        "forged signature": fake.forge(url),
        "unsigned (alg none)": jwt.encode(fake.claims(url), "", algorithm="none"),
        "HS256 with the public key": _hs256_with_public_key(teams, url),
        "wrong audience": fake.mint(url, aud="some-other-bot"),
        "wrong issuer": fake.mint(url, iss="https://evil.example"),
        "expired": fake.mint(url, exp=now - 3600, nbf=now - 7200),
        "other service url": fake.mint("https://smba.trafficmanager.net/emea/"),
        "no service url claim": fake.mint(url, serviceurl=None),
        "no expiry": fake.mint(url, exp=None),
    }
    before_posted, before_runs = len(fake.posted), len(teams.runtime.services.audit.runs(limit=1000))
    for what, token in bad_tokens.items():
        r = teams.post(a, token=token)
        assert r.status_code == 401, what
        assert r.json() == {"error": "unauthorized"}
    # A key that does not endorse the activity's channel.
    other_channel = a | {"channelId": "skype"}
    assert teams.post(other_channel, token=fake.mint(url)).status_code == 401
    # Garbage is a bad request, not a crash.
    r = teams.http.post("/api/messages", content=b"{not json", headers={"Authorization": f"Bearer {fake.mint(url)}"})
    assert r.status_code == 400
    assert len(fake.posted) == before_posted
    assert len(teams.runtime.services.audit.runs(limit=1000)) == before_runs


def test_a_redelivered_activity_is_answered_once(teams: Teams) -> None:
    a = message(teams.fake, BOB, "hotel limit?", "a:conv-retry")
    codes = [teams.post(a).status_code for _ in range(3)]
    assert codes == [202, 202, 202]
    assert sorted(teams.outcomes.wait(f"a:conv-retry:{a['id']}", 3)) == ["answered", "duplicate", "duplicate"]
    assert len(teams.fake.replies_to(a["id"])) == 1
    assert len(teams.fake.replies_to(a["id"], "typing")) == 1


def test_unknown_users_get_a_polite_refusal(teams: Teams) -> None:
    a = message(teams.fake, person("aad-stranger", "Sam Stranger"), "hotel limit?", "a:conv-who")
    assert teams.post(a).status_code == 202
    reply = teams.answer(a)
    assert reply.activity["text"].startswith("Sorry, I don't know who you are in Sovra yet")
    assert "aad-stranger" in reply.activity["text"]


def test_a_user_with_no_groups_is_answered(teams: Teams) -> None:
    a = message(teams.fake, NINA, "hotel limit?", "a:conv-nina")
    teams.post(a)
    assert "(asked by nina)" in _card_text(_card(teams.answer(a)))


def test_oversized_messages_are_refused_clearly(teams: Teams) -> None:
    a = message(teams.fake, ALICE, "why " * 2500, "a:conv-long")
    teams.post(a)
    assert "I can answer questions of up to 8,000 characters" in teams.answer(a).activity["text"]
    huge = message(teams.fake, ALICE, "x" * 300_000, "a:conv-huge")
    assert teams.post(huge).status_code == 413


def test_concurrent_messages_from_one_user_are_all_answered(teams: Teams) -> None:
    acts = [message(teams.fake, ALICE, f"hotel limit, question {i}?", "a:conv-many") for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda x: teams.post(x).status_code, acts)) == [202] * 4
    texts = [_card_text(_card(teams.answer(x))) for x in acts]
    assert len({t.rsplit("Audit run ", 1)[1] for t in texts}) == 4


def _approval_card(teams: Teams, conversation: str) -> tuple[Posted, str]:
    kind = "groupChat" if conversation.startswith("19:") else "personal"
    a = message(teams.fake, BOB, "please pay invoice INV-7", conversation, kind)
    teams.post(a)
    reply = teams.answer(a)
    card = _card(reply)
    assert "Approval needed for pay_invoice" in _card_text(card)
    verbs = [(x["type"], x["verb"], x["fallback"]["type"]) for x in card["actions"]]
    assert verbs == [("Action.Execute", "approve", "Action.Submit"), ("Action.Execute", "reject", "Action.Submit")]
    run_id = card["actions"][0]["data"]["run_id"]
    assert teams.runtime.pending_approval(run_id) is not None
    return reply, run_id


def _click(teams: Teams, who: dict[str, Any], conv: str, card_id: str, verb: str, run_id: str, **data: Any) -> Any:
    inv = card_action(teams.fake, who, conv, card_id, {"sovra_action": verb, "run_id": run_id, **data})
    r = teams.post(inv)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    return body["value"]


def test_an_approver_approves_from_the_card(teams: Teams) -> None:
    conv = "19:approve@thread.v2"  # a group chat of bob, mona and alice
    reply, run_id = _approval_card(teams, conv)
    card_id = reply.id
    refused = _click(teams, ALICE, conv, card_id, "approve", run_id)
    assert "may not decide run" in _card_text(refused) and refused["actions"]  # buttons stay
    assert teams.runtime.pending_approval(run_id) is not None
    decided = _click(teams, MONA, conv, card_id, "approve", run_id)
    assert "Approved by Mona Manager" in _card_text(decided) and "actions" not in decided
    assert teams.outcomes.wait(f"decision:{run_id}") == ["private"]
    # The answer quotes the ledger, which neither Mona nor Alice may read: the group chat gets a
    # note, Bob (the owner) the answer in his personal chat with the bot (issue 17).
    [result] = teams.fake.replies_to(card_id)
    assert "I sent Bob Schneider the answer privately" in _card_text(_card(result))
    in_group = json.dumps([p.activity for p in teams.fake.posted if p.conversation_id == conv])
    assert "approved by mona" not in in_group and "JE-1001" not in in_group
    [private] = teams.fake.personal_chat(M["bob"]["id"])
    assert "Invoice INV-7 payment approved by mona." in _card_text(_card(private))
    decision = next(r for r in teams.runtime.services.audit.records(run_id) if r.kind == "approval.decision")
    assert decision.data["approver"] == "mona" and decision.data["approved"] is True


def test_a_rejection_needs_a_reason(teams: Teams) -> None:
    reply, run_id = _approval_card(teams, "a:conv-reject")
    card_id = reply.id
    no_reason = _click(teams, BOB, "a:conv-reject", card_id, "reject", run_id, reason="  ")
    assert "a refusal needs a reason" in _card_text(no_reason) and no_reason["actions"]
    decided = _click(teams, BOB, "a:conv-reject", card_id, "reject", run_id, reason="too expensive")
    assert "Rejected by Bob Schneider: too expensive" in _card_text(decided)
    teams.outcomes.wait(f"decision:{run_id}")
    [result] = teams.fake.replies_to(card_id)
    assert "payment refused (too expensive) by bob" in _card_text(_card(result))


def test_wrong_client_credentials_give_a_clear_error(tmp_path: Path) -> None:
    import asyncio

    from microsoft_agents.hosting.core import AgentAuthConfiguration

    from sovra.ui.teams_auth import ClientCredentialsTokenProvider

    fake = FakeBotFramework(APP_ID, APP_PASSWORD)
    try:
        cfg = AgentAuthConfiguration(client_id=APP_ID, client_secret="wrong")
        provider = ClientCredentialsTokenProvider(cfg, fake.token_url, "wrong")
        with pytest.raises(SovraError, match=r"could not get a token to reply \(401 invalid_client\)"):
            asyncio.run(provider.get_access_token("https://api.botframework.com", []))
    finally:
        fake.close()


def test_older_clients_approve_with_action_submit(teams: Teams) -> None:
    conv = "19:submit@thread.v2"
    teams.fake.rosters[conv] = [M["bob"], M["fred"]]  # fred may read the policy and the ledger
    reply, run_id = _approval_card(teams, conv)
    # Without Universal Actions the fallback Action.Submit arrives as a message carrying the data.
    submit = message(teams.fake, MONA, "", conv, "groupChat") | {
        "text": None,
        "entities": [],
        "replyToId": reply.id,
        "value": {"sovra_action": "approve", "run_id": run_id, "reason": ""},
    }
    assert teams.post(submit).status_code == 202
    teams.outcomes.wait(f"decision:{run_id}")
    [decided] = teams.fake.replies_to(submit["id"])
    assert "Approved by Mona Manager" in _card_text(_card(decided))
    [result] = teams.fake.replies_to(reply.id)
    assert "Invoice INV-7 payment approved by mona." in _card_text(_card(result))


# -- who may read an answer in a group chat or channel (issue 17) ---------------------------------


def _group_text(teams: Teams, conv: str) -> str:
    return json.dumps([p.activity for p in teams.fake.posted if p.conversation_id == conv])


def test_an_answer_a_guest_may_not_read_goes_to_the_asker_alone(teams: Teams) -> None:
    conv = "19:shared@thread.v2"
    a = message(teams.fake, ALICE, "What is the hotel limit in London?", conv, "channel")
    assert teams.post(a).status_code == 202
    assert teams.outcomes.wait(f"{conv}:{a['id']}") == ["private"]
    note = teams.answer(a)
    assert "I sent Alice Martin the answer privately" in _card_text(_card(note))
    assert "250 EUR" not in _group_text(teams, conv) and "JE-1001" not in _group_text(teams, conv)
    private = teams.fake.personal_chat(M["alice"]["id"])[-1]
    assert "capped at 250 EUR" in _card_text(_card(private))
    created = teams.fake.created[-1]
    assert created["members"] == [{"id": M["alice"]["id"]}] and created["isGroup"] is False


def test_an_answer_every_member_may_read_stays_in_the_group(teams: Teams) -> None:
    conv = "19:peers@thread.v2"
    a = message(teams.fake, ALICE, "hotel limit?", conv, "groupChat")
    teams.post(a)
    assert teams.outcomes.wait(f"{conv}:{a['id']}") == ["answered"]
    assert "capped at 250 EUR" in _card_text(_card(teams.answer(a)))


def test_every_page_of_the_roster_is_checked(teams: Teams) -> None:
    conv = "19:crowd@thread.v2"
    a = message(teams.fake, ALICE, "hotel limit?", conv, "channel")
    teams.post(a)
    assert teams.outcomes.wait(f"{conv}:{a['id']}") == ["private"]
    assert "250 EUR" not in _group_text(teams, conv)
    pages = [p for p in teams.fake.roster_reads if p[0] == conv]
    assert len(pages) == 3


def test_a_conversation_whose_roster_cannot_be_read_gets_no_sources(teams: Teams) -> None:
    conv = "19:unknown@thread.v2"  # ConversationNotFound
    a = message(teams.fake, ALICE, "hotel limit?", conv, "groupChat")
    teams.post(a)
    assert teams.outcomes.wait(f"{conv}:{a['id']}") == ["private"]
    assert "250 EUR" not in _group_text(teams, conv)
