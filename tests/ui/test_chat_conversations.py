"""The chat's conversations and everyday comfort, driven by AppTest (the real script, runtime, run
table and audit log; the model-free ``chat-test`` agent): the list grouped by conversation, search,
rename, delete, the conversation's address (?c=), example questions, regenerate, copy, agent titles,
and the signed development-login token that survives a reload. The browser tests are in
test_chat_conversations_browser.py."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sovra.audit import AuditLog
from sovra.config import Settings
from sovra.ui.chat import identity
from sovra.ui.chat.conversations import agent_choices, example_questions
from sovra.ui.chat.launch import APP

TEST_AGENT = "chat-test"


def app(user: str | None = None) -> AppTest:
    """A signed-in session asking the model-free test agent (as tests/ui/test_streamlit_app.py)."""
    at = AppTest.from_file(str(APP), default_timeout=300)
    if user is not None:
        at.session_state["dev_user"] = user
    at.run()
    if user is not None:
        at.selectbox(key="agent").select(TEST_AGENT).run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    return re.sub(r"\\(.)", r"\1", "\n".join(str(p) for p in parts))


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    no_exception(at)
    return at


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory) -> Path:
    from sovra.evals.demo_corpus import USERS

    root = tmp_path_factory.mktemp("chat-conversations")
    (root / "users.json").write_text(json.dumps(USERS))
    return root


@pytest.fixture(autouse=True)
def data_dir(chat_dir, monkeypatch) -> Path:
    from sovra import agents

    monkeypatch.setenv("SOVRA_DATA_DIR", str(chat_dir))
    monkeypatch.setenv("SOVRA_UI_DEV_LOGIN", "true")
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", "127.0.0.1")
    monkeypatch.setitem(agents.AGENTS, TEST_AGENT, "fakes.chat_agent:CitedAgent")
    return chat_dir


def conv_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button if str(b.key).startswith("conv-")]


def test_one_entry_per_conversation_titled_by_its_first_question(data_dir):
    at = ask(app("carol"), "How many vacation days do I have?")
    ask(at, "And how many can I carry over?")
    thread = at.session_state["thread_id"]
    at.sidebar.button(key="new_conversation").click().run()
    ask(at, "What is the hotel limit in London?")
    labels = conv_buttons(app("carol"))  # a new session reads them from the run table
    assert len(labels) == 2, labels
    assert labels[0].startswith("What is the hotel limit in London?")  # newest first
    assert labels[1].startswith("How many vacation days do I have?")
    # Reopened, the conversation has both questions and continues its thread.
    at = app("carol")
    at.sidebar.button(key=f"conv-{thread}").click().run()
    no_exception(at)
    assert [m.question for m in at.session_state["messages"]] == [
        "How many vacation days do I have?",
        "And how many can I carry over?",
    ]
    assert at.query_params["c"] == [thread] or at.query_params["c"] == thread


def test_search_rename_delete(data_dir):
    at = ask(app("erin"), "What is the hotel limit in Paris?")
    thread = at.session_state["thread_id"]
    at.sidebar.button(key="new_conversation").click().run()
    ask(at, "May I accept a gift?")
    at.sidebar.text_input(key="conv_search").input("paris").run()
    assert [lb.split(" · ")[0] for lb in conv_buttons(at)] == ["What is the hotel limit in Paris?"]
    at.sidebar.text_input(key="conv_search").input("nothing like this").run()
    assert conv_buttons(at) == [] and "No conversation matches." in texts(at)
    at.sidebar.text_input(key="conv_search").input("").run()
    # Rename the open conversation (the gift one), then find it by its new title.
    gift = at.session_state["thread_id"]
    at.text_input(key=f"title-{gift}").input("Supplier presents").run()
    at.button(key=f"rename-{gift}").click().run()
    no_exception(at)
    assert any(lb.startswith("Supplier presents") for lb in conv_buttons(at))
    at.sidebar.text_input(key="conv_search").input("presents").run()
    assert [lb.split(" · ")[0] for lb in conv_buttons(at)] == ["Supplier presents"]
    at.sidebar.text_input(key="conv_search").input("").run()
    # Delete it: gone from the list and the chat; the audit log has the two decisions appended.
    at.button(key=f"delete-{gift}").click().run()
    no_exception(at)
    assert not at.session_state["messages"]
    assert [lb.split(" · ")[0] for lb in conv_buttons(at)] == ["What is the hotel limit in Paris?"]
    with AuditLog(data_dir / "audit.sqlite") as log:
        kinds = [r.kind for r in log.records(gift)]
        assert kinds[-2:] == ["conversation.rename", "conversation.delete"] and "run.start" in kinds
        assert log.verify().ok
    # Its address no longer opens it.
    again = AppTest.from_file(str(APP), default_timeout=300)
    again.session_state["dev_user"] = "erin"
    again.query_params["c"] = gift
    again.run()
    assert "This conversation is not available to you." in "\n".join(e.value for e in again.error)
    assert thread != gift


def test_bob_cannot_open_alices_conversation_by_its_address(data_dir):
    at = ask(app("alice"), "What is the hotel limit in London?")
    thread = at.session_state["thread_id"]
    bob = AppTest.from_file(str(APP), default_timeout=300)
    bob.session_state["dev_user"] = "bob"
    bob.query_params["c"] = thread
    bob.run()
    no_exception(bob)
    assert "This conversation is not available to you." in "\n".join(e.value for e in bob.error)
    assert not bob.session_state["messages"] and "capped at 250 EUR" not in texts(bob)
    assert not any(str(b.key) == f"rename-{thread}" for b in bob.button)
    assert f"conv-{thread}" not in [b.key for b in bob.sidebar.button]


def test_regenerate_asks_again_in_the_same_conversation(data_dir):
    at = ask(app("dave"), "What is the hotel limit in London?")
    first = at.session_state["messages"][0]
    at.button(key=f"regen-0-{first.run_id}").click().run()
    no_exception(at)
    messages = at.session_state["messages"]
    assert [m.question for m in messages] == [first.question] * 2
    assert messages[1].run_id != first.run_id and messages[1].thread_id == first.run_id
    # Copy shows the answer's text in a code block (Streamlit's own copy button sits on it).
    assert any(c.value == first.text for c in at.code)


def test_example_questions_come_from_configuration_and_ask_on_click(data_dir, monkeypatch):
    monkeypatch.setenv("SOVRA_CHAT_EXAMPLES", json.dumps(["Which expenses need a receipt?", "Who approves travel?"]))
    at = app("dave")
    labels = [b.label for b in at.button if str(b.key).startswith("example-")]
    assert labels == ["Which expenses need a receipt?", "Who approves travel?"]
    at.button(key="example-1").click().run()
    no_exception(at)
    assert [m.question for m in at.session_state["messages"]] == ["Who approves travel?"]
    assert not any(str(b.key).startswith("example-") for b in at.button)  # gone once a conversation runs


def test_example_questions_sources(tmp_path):
    s = Settings(data_dir=tmp_path)
    assert example_questions(s) == []

    class Agent:
        examples = ("From the agent?",)

    assert example_questions(s, Agent()) == ["From the agent?"]
    (tmp_path / "chat-examples.json").write_text(json.dumps(["From the data dir?"]))
    assert example_questions(s, Agent()) == ["From the data dir?"]
    s2 = Settings(data_dir=tmp_path, chat_examples=["From the settings?"])
    assert example_questions(s2, Agent()) == ["From the settings?"]
    (tmp_path / "chat-examples.json").write_text("{not json")
    assert example_questions(s, Agent()) == ["From the agent?"]  # a broken file is logged, not fatal


@pytest.mark.slow  # builds the session's demo bank when it is the first to ask for it
def test_the_demo_writes_its_examples_to_its_data_dir(demo_settings):
    from sovra.evals.demo_corpus import CHAT_EXAMPLES

    assert example_questions(demo_settings) == list(CHAT_EXAMPLES)


def test_agents_are_listed_by_plain_names():
    choices = {n: (t, d) for n, t, d in agent_choices(Settings())}
    assert choices["assistant"][0] == "Ask about policies, contracts and payments"
    assert choices["reconcile-cases"][0] == "Payments against the contract, with a follow-up case"
    assert choices["followup"][0] == "Followup"  # no title: the name in words
    assert all(t and d for t, d in choices.values())


# ---------------------------------------------------------------------------------------------
# Staying signed in across a reload


def test_login_token_round_trip_and_refusals(tmp_path):
    s = Settings(data_dir=tmp_path)
    token = identity.login_token(s, "alice", now=1000.0)
    assert identity.user_from_token(s, token, now=1001.0) == "alice"
    assert identity.user_from_token(s, token, now=1000.0 + identity.LOGIN_TTL_S + 1) is None  # expired
    body, expires, mac = token.split(".")
    bob = identity.login_token(s, "bob", now=1000.0).split(".")[0]
    assert identity.user_from_token(s, f"{bob}.{expires}.{mac}", now=1001.0) is None  # another user
    assert identity.user_from_token(s, f"{body}.{int(expires) + 999}.{mac}", now=1001.0) is None  # longer life
    assert identity.user_from_token(s, "alice", now=1001.0) is None  # a bare user name
    other = Settings(data_dir=tmp_path / "other")
    assert identity.user_from_token(other, token, now=1001.0) is None  # another data dir's secret
    key = tmp_path / "chat-login.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and len(key.read_bytes()) == 32


def test_log_out_voids_the_users_earlier_tokens(tmp_path):
    s = Settings(data_dir=tmp_path)
    before = identity.login_token(s, "alice", now=1000.0)
    bobs = identity.login_token(s, "bob", now=1000.0)
    identity.revoke_logins(s, "alice", now=1500.0)
    assert identity.user_from_token(s, before, now=1600.0) is None
    assert identity.user_from_token(s, bobs, now=1600.0) == "bob"  # only alice logged out
    after = identity.login_token(s, "alice", now=1501.0)
    assert identity.user_from_token(s, after, now=1600.0) == "alice"  # a new sign-in works
    (tmp_path / "chat-logouts.json").write_text("{broken")
    assert identity.user_from_token(s, bobs, now=1600.0) is None  # unreadable record: fail closed


def test_a_reload_with_the_token_stays_signed_in(data_dir):
    at = AppTest.from_file(str(APP), default_timeout=300).run()
    at.selectbox(key="dev_login_choice").select("bob")
    at.button(key="dev_login").click().run()
    no_exception(at)
    token = at.query_params[identity.LOGIN_PARAM]
    token = token[0] if isinstance(token, list) else token
    assert re.fullmatch(r"[\w-]+\.\d+\.[0-9a-f]{64}", token) and "bob" not in token
    reload = AppTest.from_file(str(APP), default_timeout=300)  # a new session: only the address
    reload.query_params[identity.LOGIN_PARAM] = token
    reload.run()
    no_exception(reload)
    assert "Bob" in texts(reload) and reload.chat_input and "DEVELOPMENT LOGIN." not in texts(reload)
    # After "Log out" the same address no longer signs anyone in.
    reload.button(key="logout").click().run()
    after = AppTest.from_file(str(APP), default_timeout=300)
    after.query_params[identity.LOGIN_PARAM] = token
    after.run()
    assert "please sign in again" in texts(after) and not after.chat_input
    forged = AppTest.from_file(str(APP), default_timeout=300)
    forged.query_params[identity.LOGIN_PARAM] = token[:-1] + ("0" if token[-1] != "0" else "1")
    forged.run()
    assert "please sign in again" in texts(forged) and not forged.chat_input


def test_the_token_is_ignored_when_the_development_login_is_off(data_dir, monkeypatch):
    token = identity.login_token(Settings(), "alice")
    monkeypatch.setenv("SOVRA_UI_DEV_LOGIN", "false")
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params[identity.LOGIN_PARAM] = token
    at.run()
    assert "No login is configured" in texts(at) and not at.chat_input
