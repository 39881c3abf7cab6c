"""The Streamlit chat driven by streamlit.testing.v1.AppTest: the real script, runtime, audit log.

Most tests ask ``chat-test`` (tests/fakes/chat_agent.py), a real LangGraph agent that needs no model
or index, so login, streaming, citations, the audit panel, approvals, feedback and access run in
seconds. The ``llm`` test asks the demo assistant over the demo bank.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import copy_demo_data
from streamlit.testing.v1 import AppTest

from sovra.audit import AuditLog
from sovra.ui.chat.launch import APP

TEST_AGENT = "chat-test"


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory) -> Path:
    """A data dir with the demo bank's users and no index: enough for the test agent."""
    from sovra.evals.demo_corpus import USERS

    root = tmp_path_factory.mktemp("streamlit-chat")
    (root / "users.json").write_text(json.dumps(USERS))
    return root


@pytest.fixture(autouse=True)
def data_dir(chat_dir, monkeypatch) -> Path:
    from sovra import agents

    # The app reads its settings from the environment, as under `sovra ui`.
    monkeypatch.setenv("SOVRA_DATA_DIR", str(chat_dir))
    monkeypatch.setenv("SOVRA_UI_DEV_LOGIN", "true")
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", "127.0.0.1")  # as `sovra ui` binds by default
    monkeypatch.setitem(agents.AGENTS, TEST_AGENT, "fakes.chat_agent:CitedAgent")
    return chat_dir


def app(user: str | None = None, agent: str = TEST_AGENT) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=300)
    if user is not None:
        at.session_state["dev_user"] = user
    at.run()
    if user is not None:
        at.selectbox(key="agent").select(agent).run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    # Answers are escaped for markdown ("INV\\-7"); compare the text a reader sees.
    return re.sub(r"\\(.)", r"\1", "\n".join(str(p) for p in parts))


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    no_exception(at)
    return at


def audit(data_dir: Path) -> AuditLog:
    return AuditLog(data_dir / "audit.sqlite")


def last_run_id(at: AppTest) -> str:
    return at.session_state["messages"][-1].run_id


def test_dev_login_is_clearly_marked_and_signs_in(data_dir):
    at = app()
    no_exception(at)
    assert "DEVELOPMENT LOGIN" in texts(at)
    at.selectbox(key="dev_login_choice").select("alice")
    at.button(key="dev_login").click().run()
    no_exception(at)
    assert "Alice Martin" in texts(at) and "groups: employees" in texts(at)
    assert at.chat_input, "the chat is shown after login"


def test_dev_login_off_in_production(data_dir, monkeypatch):
    monkeypatch.setenv("SOVRA_UI_DEV_LOGIN", "false")
    at = app()
    no_exception(at)
    assert "No login is configured" in texts(at)
    assert not at.chat_input and not at.button


def claiming(user: str) -> AppTest:
    """A session that already claims a development user: it must get nothing either."""
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.session_state["dev_user"] = user
    return at.run()


def test_dev_login_is_off_unless_enabled(data_dir, monkeypatch):
    monkeypatch.delenv("SOVRA_UI_DEV_LOGIN")
    at = claiming("alice")
    no_exception(at)
    assert "No login is configured" in texts(at) and "sovra ui --dev-login" in texts(at)
    assert not at.chat_input


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", ""])
def test_dev_login_is_refused_off_loopback(data_dir, monkeypatch, address):
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", address)  # "": Streamlit listens on every interface
    at = claiming("alice")
    no_exception(at)
    assert "No login is configured" in texts(at) and not at.chat_input


def test_sovra_ui_refuses_the_dev_login_on_a_public_address(monkeypatch, capsys):
    from sovra.ui.cli import main

    for args, env in ((["--dev-login"], None), ([], "true")):
        if env:
            monkeypatch.setenv("SOVRA_UI_DEV_LOGIN", env)
        with pytest.raises(SystemExit) as stop:
            main(["ui", *args, "--host", "0.0.0.0"])  # refused before Streamlit would start
        assert stop.value.code == 2
        assert "local use only" in capsys.readouterr().err


def test_oidc_configured_offers_only_the_oidc_login(data_dir):
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.secrets["auth"] = {
        "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "sovra",
        "client_secret": "s",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
    at.session_state["dev_user"] = "alice"  # must not count: the development login is off with OIDC
    at.run()
    no_exception(at)
    assert [b.label for b in at.button] == ["Log in"]
    assert "DEVELOPMENT LOGIN" not in texts(at) and not at.chat_input


def test_ask_streams_an_answer_with_citations_and_the_audit_panel(data_dir):
    at = ask(app("alice"), "What is the hotel limit in London?")
    body = texts(at)
    assert "capped at 250 EUR" in body and "asked by alice" in body
    labels = [b.label for b in at.button]
    assert "[1] Travel & Expenses Policy · p. 3" in labels
    assert "[2] General ledger · 2 ledger row(s)" in labels
    panel = at.expander[0]
    assert panel.label == "How this answer was made"
    panel_text = "\n".join(str(e.value) for e in panel.children.values() if hasattr(e, "value"))
    assert "Question received" in body and "Answer given" in body, panel_text
    assert f"run {last_run_id(at)}" in body and "asked by alice" in body
    # A chip opens the passage (this agent's citation has no indexed chunk: the recorded quote).
    run_id = last_run_id(at)
    at.button(key=f"cite-{run_id}-1").click().run()
    no_exception(at)
    assert any("London: 250 EUR per night." in h.proto.body for h in at.get("html"))
    # The conversation is in the history of the sidebar.
    assert at.sidebar.button(key=f"conv-{run_id}")


def test_feedback_is_stored_with_the_run(data_dir):
    at = ask(app("alice"), "What is the hotel limit in London?")
    run_id = last_run_id(at)
    at.feedback(key=f"fb-{run_id}").set_value(0).run()
    at.text_input(key=f"fbc-{run_id}").input("The limit changed in May.").run()
    at.button(key=f"fbs-{run_id}").click().run()
    no_exception(at)
    assert "feedback is stored with the run" in texts(at)
    with audit(data_dir) as log:
        fb = [r for r in log.records(run_id) if r.kind == "feedback"]
        assert len(fb) == 1 and fb[0].user_id == "alice"
        assert fb[0].data == {"rating": "down", "text": "The limit changed in May."}
        assert log.verify().ok


@pytest.mark.parametrize(
    ("question", "message"),
    [("   ", "The question is empty"), ("x" * 9001, "9,001 characters long; the limit is 8,000")],
)
def test_bad_questions_get_a_clear_error(data_dir, question, message):
    at = app("alice")
    with audit(data_dir) as log:
        before = len(log.runs(limit=1000))
    ask(at, question)
    assert message in "\n".join(e.value for e in at.error)
    assert "messages" not in at.session_state or not at.session_state["messages"]
    with audit(data_dir) as log:
        assert len(log.runs(limit=1000)) == before, "no run was started"


def test_approval_buttons_resume_the_run(data_dir):
    at = ask(app("alice"), "Please pay the Acme invoice")
    a = at.session_state["messages"][-1]
    assert a.status == "awaiting_approval"
    assert "Approval needed" in texts(at) and "Pay invoice INV-7" in texts(at)
    # Rejecting needs a reason: the runtime says so, the page shows it.
    at.button(key=f"reject-{a.run_id}").click().run()
    no_exception(at)
    assert "a refusal needs a reason" in "\n".join(e.value for e in at.error)
    assert "--reason" not in texts(at) + "\n".join(e.value for e in at.error)  # web wording (issue 24)
    at.button(key=f"approve-{a.run_id}").click().run()
    no_exception(at)
    done = at.session_state["messages"][-1]
    assert done.run_id == a.run_id and done.status == "answered"
    assert "payment approved by alice" in texts(at)
    with audit(data_dir) as log:
        decision = [r for r in log.records(a.run_id) if r.kind == "approval.decision"]
        assert decision and decision[0].data["approver"] == "alice" and decision[0].data["approved"] is True


def _open_run(at: AppTest, run_id: str) -> AppTest:
    at.sidebar.text_input(key="run_lookup").input(run_id)
    at.sidebar.button(key="open_run_button").click().run()
    no_exception(at)
    return at


def test_an_unknown_run_id_gets_no_command_line_hint(data_dir):
    errors = "\n".join(e.value for e in _open_run(app("alice"), "no-such-run").error)
    assert "no-such-run" in errors and "sovra audit" not in errors and "Hint" not in errors


def test_only_the_owner_and_auditors_open_a_run(data_dir):
    run_id = last_run_id(ask(app("alice"), "What is the hotel limit in London?"))
    bob = _open_run(app("bob"), run_id)
    assert "bob may not read run" in "\n".join(e.value for e in bob.error)
    assert "Question received" not in texts(bob) and "asked by alice" not in texts(bob)
    erin = _open_run(app("erin"), run_id)  # group "auditor"
    assert not erin.error
    assert "Question received" in texts(erin) and "asked by alice" in texts(erin)
    alice = _open_run(app("alice"), run_id)
    assert not alice.error and "Answer given" in texts(alice)
    # Past conversations list only one's own runs.
    assert not any(b.key == f"conv-{run_id}" for b in app("bob").sidebar.button)


def test_a_past_conversation_reopens_and_continues(data_dir):
    first = ask(app("dave"), "What is the hotel limit in London?")
    run_id = last_run_id(first)
    at = app("dave")  # a new browser session
    at.sidebar.button(key=f"conv-{run_id}").click().run()
    no_exception(at)
    assert [m.run_id for m in at.session_state["messages"]] == [run_id]
    assert "capped at 250 EUR" in texts(at)
    ask(at, "And in Paris?")
    messages = at.session_state["messages"]
    assert len(messages) == 2 and messages[1].thread_id == run_id


@pytest.mark.llm
def test_the_assistant_answers_from_the_demo_bank_with_highlighted_passages(demo_settings, tmp_path, monkeypatch):
    demo = copy_demo_data(demo_settings, tmp_path / "data")
    monkeypatch.setenv("SOVRA_DATA_DIR", str(demo))
    monkeypatch.setenv("SOVRA_AS_OF", str(demo_settings.as_of))
    at = ask(app("alice", agent="assistant"), "What is the hotel limit per night in London?")
    assert at.session_state["messages"], [e.value for e in at.error]
    a = at.session_state["messages"][-1]
    assert a.citations and "250" in a.text, a.text
    c = a.citations[0]
    at.button(key=f"cite-{a.run_id}-{c.n}").click().run()
    no_exception(at)
    bodies = [h.proto.body for h in at.get("html")]
    assert any("<mark>" in b for b in bodies), bodies
    body = texts(at)
    assert "tool.search_documents" in body or "Tool search_documents" in body
    assert "model/adapter" in body
