"""The chat's pieces below Streamlit: OIDC claims to a user, passages and their highlights, the
audit steps a reader sees, feedback guards, the `sovra ui` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovra.audit import AuditLog
from sovra.errors import InputError
from sovra.identity import Directory, User
from sovra.recorder import RunRecorder
from sovra.runtime import Citation
from sovra.ui.audit_report import AuditAccessError
from sovra.ui.chat import identity, session
from sovra.ui.chat.launch import APP, streamlit_argv
from sovra.ui.chat.views import md, passage_html

DIRECTORY = Directory(
    {
        "alice": User("alice", "Alice Martin", ("employees",)),
        "bob": User("bob", "Bob Schneider", ("employees", "finance")),
    }
)


# ---------------------------------------------------------------------------------------------
# Identity


def test_a_directory_user_keeps_the_directory_groups_without_a_groups_claim():
    u = identity.user_from_claims({"preferred_username": "bob", "email": "bob@x"}, DIRECTORY)
    assert u == User("bob", "Bob Schneider", ("employees", "finance"))


def test_the_groups_claim_narrows_a_directory_user_and_never_adds():
    claims = {"preferred_username": "bob", "groups": ["employees", "group:auditor", "risk-committee"]}
    assert identity.user_from_claims(claims, DIRECTORY).groups == ("employees",)


def test_an_unknown_user_gets_exactly_the_claims_groups():
    u = identity.user_from_claims({"email": "zoe@bank.example", "name": "Zoe", "groups": "finance"}, DIRECTORY)
    assert u == User("zoe@bank.example", "Zoe", ("finance",))
    nobody = identity.user_from_claims({"preferred_username": "yann"}, DIRECTORY)
    assert nobody.groups == () and nobody.principals == ["group:everyone", "user:yann"]


def test_a_login_without_a_user_claim_is_refused():
    with pytest.raises(identity.LoginError, match="neither"):
        identity.user_from_claims({"sub": "123"}, DIRECTORY)


def test_the_session_directory_resolves_only_the_acting_user():
    d = identity.SessionDirectory(DIRECTORY)
    narrowed = User("bob", "Bob Schneider", ("employees",))
    assert d.get("bob").groups == ("employees", "finance")
    with identity.acting_as(narrowed):
        assert d.get("bob") is narrowed
        assert d.get("alice").name == "Alice Martin"
    assert d.get("bob").groups == ("employees", "finance")


# ---------------------------------------------------------------------------------------------
# Text and passages


def test_answers_are_never_markup():
    text = "[click](javascript:alert(1)) **bold** <b>x</b> $x$ :red[y]\nline 2"
    rendered = md(text)
    assert "](" not in rendered.replace("\\]\\(", "")
    assert "\\*\\*bold\\*\\*" in rendered and "\\<b\\>" in rendered and "\\$x\\$" in rendered
    assert rendered.endswith("  \nline 2")


def test_quotes_and_spans_are_found_whitespace_insensitively():
    text = "Hotels.  In London the limit is\n250 EUR per night. Paris: 200 EUR per night."
    answer = '"In London the limit is 250 EUR per night." [2]\n"Paris: 200 EUR per night." [3]'
    assert session.quotes_for(answer, 2) == ["In London the limit is 250 EUR per night."]
    spans = session.find_spans(text, session.quotes_for(answer, 2))
    assert [text[s:e] for s, e in spans] == ["In London the limit is\n250 EUR per night."]
    c = Citation(n=3, kind="document", title="T", url="u", quote="Paris: 200 EUR per night. Not in the text.")
    spans = session.passage_spans(text, c, "an answer without quotes")
    assert [text[s:e] for s, e in spans] == ["Paris: 200 EUR per night."]


def test_overlapping_spans_merge():
    assert session.find_spans("abcdef", ["abc", "cde", "zzz", ""]) == [(0, 5)]


def test_the_passage_is_escaped_and_highlighted():
    p = session.Passage("T", "u", 1, "a <script>x</script> b", ((2, 20),))
    out = passage_html(p)
    assert "<mark>&lt;script&gt;x&lt;/script&gt;</mark>" in out and "<script>" not in out


def test_find_passage_reads_the_chunk_as_the_user(demo_runtime):
    from sovra.tools.base import ToolContext
    from sovra.tools.search import SearchArgs, search_documents

    alice = demo_runtime.services.directory.get("alice")
    hits = search_documents(
        SearchArgs(query="hotel limit per night London"), ToolContext(user=alice, services=demo_runtime.services)
    ).hits
    hit = next(h for h in hits if "London" in h.text)
    sentence = next(s for s in hit.text.split(". ") if "London" in s)
    c = Citation(n=1, kind="document", title=hit.title, url=hit.url, page=hit.page, chunk_id=hit.chunk_id)
    p = session.find_passage(demo_runtime, alice, c, f'"{sentence}" [1]')
    assert p is not None and p.text == hit.text and p.page == hit.page
    assert [p.text[s:e] for s, e in p.spans] == [sentence]
    # The ACL applies: a chunk of the risk committee's documents is not shown to alice.
    carol = demo_runtime.services.directory.get("carol")
    secret = search_documents(
        SearchArgs(query="CET1 floor risk appetite"), ToolContext(user=carol, services=demo_runtime.services)
    ).hits
    restricted = [h for h in secret if "group:risk-committee" in str(h.metadata) or "CET1" in h.text]
    assert restricted, "the demo bank has a risk-committee document about CET1"
    h = restricted[0]
    c = Citation(n=1, kind="document", title=h.title, url=h.url, chunk_id=h.chunk_id, quote=h.text[:200])
    assert session.find_passage(demo_runtime, carol, c) is not None
    assert session.find_passage(demo_runtime, alice, c) is None


# ---------------------------------------------------------------------------------------------
# Audit steps and feedback


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    with AuditLog(tmp_path / "audit.sqlite") as log:
        yield log


def _run(log: AuditLog, user: str = "alice") -> str:
    with RunRecorder(log, user_id=user, groups=["employees"], interface="streamlit", question="hotel?") as rec:
        rec.record("plan", {"search_query": "hotel limit", "ledger_lookup": False})
        with rec.step("tool.search_documents", args={"query": "hotel limit"}) as step:
            step.result = {"hits": [{"chunk_id": "travel#3", "doc_id": "travel", "page": 2, "score": 0.81234}]}
        rec.model_call(model="adapter-x", input_tokens=120, output_tokens=30, duration_ms=40.0, route="planning")
        rec.finish(answer={"text": "250 EUR [1]", "status": "answered", "notes": []}, citations=[])
    return rec.run_id


def test_the_panel_shows_plan_tools_chunks_scores_model_and_tokens(log):
    run_id = _run(log)
    view = session.run_view(log, run_id, DIRECTORY.get("alice"))
    titles = [s.title for s in view.steps]
    assert titles[0] == "Question received" and "Plan" in titles and titles[-1] == "Answer given"
    search = next(s for s in view.steps if s.title == "Tool search_documents")
    assert search.table == [{"chunk": "travel#3", "page": 2, "score": 0.8123}]
    assert view.models == ["adapter-x"] and (view.input_tokens, view.output_tokens) == (120, 30)
    with pytest.raises(AuditAccessError):
        session.run_view(log, run_id, DIRECTORY.get("bob"))
    assert session.run_view(log, run_id, User("erin", "Erin", ("auditor",))).user == "alice"


def test_feedback_is_appended_to_the_owners_run_only(log):
    run_id = _run(log)
    alice, bob = DIRECTORY.get("alice"), DIRECTORY.get("bob")
    with pytest.raises(AuditAccessError):
        session.record_feedback(log, run_id, bob, "up")
    with pytest.raises(InputError, match="limit"):
        session.record_feedback(log, run_id, alice, "up", "x" * (session.MAX_COMMENT_CHARS + 1))
    with pytest.raises(InputError, match="rating"):
        session.record_feedback(log, run_id, alice, "meh")
    with pytest.raises(InputError, match="no run"):
        session.record_feedback(log, "nope", alice, "up")
    rec = session.record_feedback(log, run_id, alice, "up", "  clear answer ")
    assert rec.run_id == run_id and rec.data == {"rating": "up", "text": "clear answer"}
    # The comment is free text: sealed out of the chain, so it can be erased (GDPR) later.
    assert rec.sealed["text"] != "clear answer"
    assert log.verify().ok


def test_a_past_run_is_rebuilt_from_its_records(log):
    run_id = _run(log)
    a = session.answer_from_records(log.records(run_id))
    assert (a.run_id, a.user, a.question, a.text, a.status) == (run_id, "alice", "hotel?", "250 EUR [1]", "answered")


# ---------------------------------------------------------------------------------------------
# `sovra ui`


def test_sovra_ui_runs_streamlit_offline_on_the_chosen_address():
    argv = streamlit_argv("0.0.0.0", 9001)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4] == str(APP) and APP.is_file()
    opts = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert opts["--server.address"] == "0.0.0.0" and opts["--server.port"] == "9001"
    assert opts["--browser.gatherUsageStats"] == "false" and opts["--server.headless"] == "true"


def test_sovra_ui_is_a_command():
    from typer.testing import CliRunner

    from sovra.ui.cli import app

    result = CliRunner().invoke(app, ["ui", "--help"])
    assert result.exit_code == 0 and "--port" in result.output and "8501" in result.output
