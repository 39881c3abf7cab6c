"""The Streamlit chat, drawn. Thin: who is asking, call the runtime, render what comes back.

One :class:`~sovra.runtime.Runtime` per server process (``st.cache_resource``), shared by every
browser session and closed when the cache releases it or the process exits. The embedded index,
the SQLite stores and the bundled model are single-process resources, so sessions take turns: a
question holds the runtime's lock while it runs (as in the HTTP API), and the embedded index
cannot be open in ``sovra ask`` or ``sovra serve`` at the same time (use a Qdrant server for that).
"""

from __future__ import annotations

import atexit
import html
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import streamlit as st

from sovra.config import Settings
from sovra.errors import SovraError
from sovra.identity import User
from sovra.runtime import MAX_QUESTION_CHARS, Answer, Citation, RunEvent, Runtime
from sovra.ui.audit_report import AuditAccessError
from sovra.ui.chat import conversations, identity, session, uploads, viewer
from sovra.ui.compliance import is_console_user

log = logging.getLogger(__name__)

INTERFACE = "streamlit"
STATUS_NOTES = {
    "extracted": "Quoted from the sources: the bundled model does not write prose "
    "(set SOVRA_LLM_BASE_URL to a served model for written answers).",
    "not_found": "Not found in the documents you can access.",
    "uncited": "The model cited no source: treat this answer with care.",
    "awaiting_approval": "Waiting for a human decision before it continues.",
    "budget_exceeded": "The run stopped at its budget.",
    "cancelled": "The run was cancelled.",
}


# ---------------------------------------------------------------------------------------------
# The runtime: one per server process


class Shared:
    """The process's runtime and the lock that makes sessions take turns with it."""

    def __init__(self, settings: Settings) -> None:
        self.runtime = Runtime(settings)
        self.directory = identity.install(self.runtime)
        self.lock = threading.RLock()
        self.closed = False

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            conversations.close(self)
            audit = self.runtime.services.__dict__.pop("audit", None)  # Services.close leaves it open
            self.runtime.close()
            if audit is not None:
                audit.close()


_open: list[Shared] = []


def _release(shared: Shared) -> None:
    shared.close()


@st.cache_resource(show_spinner=False, max_entries=1, on_release=_release)
def _shared(key: str) -> Shared:
    shared = Shared(Settings())
    _open.append(shared)
    return shared


@atexit.register
def _close_all() -> None:
    for shared in _open:
        shared.close()


def shared() -> Shared:
    s = Settings()
    # Keyed by where the data lives: a changed data dir (tests) gets its own runtime, and
    # max_entries=1 releases (closes) the previous one.
    return _shared(f"{s.data_dir.expanduser().resolve()}|{s.qdrant_url or ''}|{s.users_file or ''}")


# ---------------------------------------------------------------------------------------------
# Text


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(text: str) -> str:
    """Plain text for st.markdown: nothing in it is markup (answers quote untrusted documents)."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def passage_html(p: session.Passage) -> str:
    out, pos = [], 0
    for s, e in p.spans:
        out.append(html.escape(p.text[pos:s]))
        out.append(f"<mark>{html.escape(p.text[s:e])}</mark>")
        pos = e
    out.append(html.escape(p.text[pos:]))
    return (
        '<div class="sovra-passage" style="white-space:pre-wrap;line-height:1.5;border-left:3px solid #bbb;'
        f'padding:.4em .8em">{"".join(out)}</div>'
    )


def md_table(rows: list[dict[str, Any]]) -> str:
    """A small markdown table. Not st.dataframe/st.table: their Arrow transport renders blank in the
    browser with pandas 3's Arrow-backed strings, and a markdown table also prints."""
    cols = list(rows[0])
    lines = ["| " + " | ".join(md(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(md(str(r.get(c, ""))) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def chip_label(c: Citation) -> str:
    where = f" · p. {c.page}" if c.page is not None else ""
    if c.rows:
        where = f" · {len(c.rows)} ledger row(s)"
    title = c.title if len(c.title) <= 48 else c.title[:47] + "…"
    return f"[{c.n}] {title}{where}"


# ---------------------------------------------------------------------------------------------
# Login


def _auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all: Streamlit raises instead of answering False
        return False


def login(sh: Shared, settings: Settings) -> User | None:
    """The signed-in user, or None after drawing the login screen."""
    if _auth_configured():
        if not getattr(st.user, "is_logged_in", False):
            st.title("Sovra")
            st.write("Sign in with your company account to ask questions about the documents you may read.")
            st.button("Log in", on_click=st.login, type="primary")
            return None
        try:
            return identity.user_from_claims(
                st.user.to_dict(), sh.directory.base, settings.oidc_username_claim, settings.oidc_groups_claim
            )
        except SovraError as exc:
            _error(exc)
            st.button("Log out", on_click=st.logout)
            return None
    if not identity.dev_login_allowed(settings):
        st.error(
            "No login is configured: set up OIDC in .streamlit/secrets.toml ([auth]) "
            "or, on a development machine only, start the chat with `sovra ui --dev-login` "
            "(SOVRA_UI_DEV_LOGIN=true; refused unless the chat listens on 127.0.0.1)."
        )
        return None
    picked = st.session_state.get("dev_user")
    token = st.query_params.get(identity.LOGIN_PARAM)
    if not picked and token:  # a reload: the signed token says who signed in (until it expires)
        picked = identity.user_from_token(settings, token)
        if picked is None:
            st.query_params.pop(identity.LOGIN_PARAM, None)
            st.info("Your sign-in has expired or is not valid: please sign in again.")
        elif sh.directory.base.get(picked) is not None:
            st.session_state["dev_user"] = picked
        else:  # signed for a user the directory no longer has
            picked = None
    if picked:
        return sh.directory.base.get(picked)
    st.title("Sovra")
    st.warning(
        "**DEVELOPMENT LOGIN.** Anyone can sign in as any user of the directory. "
        "Configure OIDC ([auth] in .streamlit/secrets.toml) and set SOVRA_UI_DEV_LOGIN=false in production.",
        icon="⚠️",
    )
    users = {u.id: u for u in sh.directory.base}
    choice = st.selectbox(
        "Sign in as",
        list(users),
        format_func=lambda uid: f"{users[uid].name} ({uid}) · {', '.join(users[uid].groups) or 'no groups'}",
        key="dev_login_choice",
    )
    if st.button("Sign in (development)", type="primary", key="dev_login"):
        st.session_state["dev_user"] = choice
        st.query_params[identity.LOGIN_PARAM] = identity.login_token(settings, choice)
        st.rerun()
    return None


def _logout() -> None:
    if st.session_state.get("dev_user") and not _auth_configured():  # the signed address stops working
        identity.revoke_logins(Settings(), str(st.session_state["dev_user"]))
    for key in ("dev_user", "messages", "thread_id", "open_run", "feedback_sent", "url_thread"):
        st.session_state.pop(key, None)
    st.query_params.clear()  # the signed login token and the open conversation's address
    for key in [k for k in st.session_state if str(k).startswith("console_")]:  # what the console opened
        st.session_state.pop(key, None)
    if _auth_configured():
        st.logout()


# ---------------------------------------------------------------------------------------------
# Page parts


# Hints written for the command line ("add --reason", "`sovra audit runs`") mean nothing in a browser.
_CLI_HINT = re.compile(r"(^|[\s`'\"])(--[a-z]|sovra\s+[a-z])")


def _error(exc: SovraError) -> None:
    hint = exc.hint if exc.hint and not _CLI_HINT.search(exc.hint) else None
    st.error(exc.message + (f"  \nHint: {hint}" if hint else ""), icon="🚫")


def sidebar(sh: Shared, user: User) -> str:
    """Account, agent picker, past conversations, open a run by id. Returns the chosen agent."""
    with st.sidebar:
        if not _auth_configured():
            st.warning("DEVELOPMENT LOGIN", icon="⚠️")
        st.markdown(f"**{md(user.name)}** ({md(user.id)})")
        st.caption("groups: " + (", ".join(user.groups) or "none"))
        st.button("Log out", on_click=_logout, key="logout")
        agent = conversations.agent_picker(sh.runtime.settings)
        uploads.sidebar_section(sh, user)  # search filters and the user's uploaded files
        conversations.sidebar_list(sh, user)
        st.subheader("Open a run")
        run_id = st.text_input("Audit run id", key="run_lookup", help="Your own runs; auditors may open any run.")
        if st.button("Open", key="open_run_button") and run_id.strip():
            st.session_state["open_run"] = run_id.strip()
            st.rerun()
        if is_console_user(user, sh.runtime.settings):  # a convenience: the console checks again itself
            st.divider()
            if st.button("Compliance console", key="open_console", icon=":material/policy:"):
                st.query_params["page"] = "console"
                st.rerun()
    return str(agent)


def how_it_was_made(sh: Shared, viewer: User, run_id: str, expanded: bool = False) -> None:
    with st.expander("How this answer was made", expanded=expanded, icon=":material/manage_search:"):
        try:
            with sh.lock:
                view = session.run_view(sh.runtime.services.audit, run_id, viewer)
        except SovraError as exc:
            _error(exc)
            return
        st.caption(
            f"run {view.run_id} · asked by {view.user} · model/adapter: {', '.join(view.models) or 'none'} · "
            f"tokens: {view.input_tokens} in, {view.output_tokens} out"
        )
        for i, step in enumerate(view.steps, start=1):
            st.markdown(f"**{i}. {md(step.title)}** <small>audit record {step.seq}</small>", unsafe_allow_html=True)
            for line in step.lines:
                st.caption(md(line))
            if step.table:
                st.markdown(md_table(step.table))


def citations(sh: Shared, user: User, a: Answer, items: list[Citation], key: str) -> None:
    cols = st.columns(min(len(items), 3) or 1)
    for i, c in enumerate(items):
        icon = ":material/table_rows:" if c.kind == "ledger" else ":material/description:"
        if cols[i % len(cols)].button(chip_label(c), key=f"{key}-{a.run_id}-{c.n}", icon=icon, help=c.url):
            viewer.source_dialog(sh, user, c, a.text)  # the document at the page, or the ledger rows


def approval_box(sh: Shared, user: User, a: Answer, index: int) -> None:
    ap = a.approval
    if ap is None:
        return
    st.warning(f"**Approval needed:** {md(session.approval_words(ap.description, ap.tool, ap.args))}", icon="✋")
    reason = st.text_input("Reason (required to reject)", key=f"reason-{a.run_id}")
    left, right = st.columns(2)
    approve = left.button("Approve", key=f"approve-{a.run_id}", type="primary", icon=":material/check:")
    reject = right.button("Reject", key=f"reject-{a.run_id}", icon=":material/close:")
    if not (approve or reject):
        return
    if reject and not reason.strip():
        st.error("Rejecting: a refusal needs a reason. Write it in the box above; it is kept with the run.", icon="🚫")
        return
    try:
        with st.spinner("Continuing the run…"), sh.lock, identity.acting_as(user):
            done = sh.runtime.resume(a.run_id, user.id, approved=approve, reason=reason, interface=INTERFACE)
    except SovraError as exc:
        _error(exc)
        return
    st.session_state["messages"][index] = done
    st.rerun()


def feedback_box(sh: Shared, user: User, a: Answer) -> None:
    if a.user != user.id or a.status == "awaiting_approval":
        return
    sent: dict[str, int] = st.session_state.setdefault("feedback_sent", {})
    if a.run_id in sent:
        st.caption(f"Thank you: your feedback is stored with the run (audit record {sent[a.run_id]}).")
        return
    rating = st.feedback("thumbs", key=f"fb-{a.run_id}")
    if rating is None:
        return
    comment = st.text_input("What was good or wrong? (optional)", key=f"fbc-{a.run_id}")
    if st.button("Send feedback", key=f"fbs-{a.run_id}"):
        try:
            with sh.lock:
                audit = sh.runtime.services.audit
                rec = session.record_feedback(audit, a.run_id, user, session.RATINGS[rating], comment)
        except SovraError as exc:
            _error(exc)
            return
        sent[a.run_id] = rec.seq
        st.rerun()


def turn(sh: Shared, user: User, a: Answer, index: int) -> None:
    with st.chat_message("user"):
        st.markdown(md(a.question))
    with st.chat_message("assistant"):
        st.markdown(md(session.shown_text(a)))  # a pending action in words, not as a raw call
        if STATUS_NOTES.get(a.status):
            st.caption(STATUS_NOTES[a.status])
        for note in a.notes:
            st.caption(md(note))
        if a.citations:
            citations(sh, user, a, a.citations, "cite")
        if a.evidence:
            st.caption("Most relevant passages retrieved (not cited by the model):")
            citations(sh, user, a, a.evidence, "evidence")
        if a.status == "awaiting_approval":
            approval_box(sh, user, a, index)
        conversations.answer_actions(a, index)
        how_it_was_made(sh, user, a.run_id)
        feedback_box(sh, user, a)


def _events(sh: Shared, agent: Any, question: str, user: User, thread_id: str | None) -> Iterator[RunEvent]:
    rt = sh.runtime
    stream = getattr(rt, "stream", None)
    if callable(stream):
        yield from stream(agent, question, user.id, INTERFACE, thread_id=thread_id, scope=uploads.chosen_scope())
        return
    answer = rt.ask(agent, question, user.id, INTERFACE)  # a runtime without streaming
    yield RunEvent("answer", answer.run_id, {"answer": answer})


def ask(sh: Shared, user: User, question: str, agent_name: str) -> None:
    question = question.strip()
    if not question:
        st.error("The question is empty: type a question first.", icon="🚫")
        return
    if len(question) > MAX_QUESTION_CHARS:
        st.error(
            f"The question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. "
            "Please shorten it.",
            icon="🚫",
        )
        return
    from sovra.agents import get_agent

    messages: list[Answer] = st.session_state.setdefault("messages", [])
    thread_id = st.session_state.get("thread_id") or (messages[0].thread_id or messages[0].run_id if messages else None)
    with st.chat_message("user"):
        st.markdown(md(question))
    with st.chat_message("assistant"):
        status = st.status("Working…", expanded=False)
        result: dict[str, Any] = {}

        def tokens() -> Iterator[str]:
            for ev in _events(sh, get_agent(agent_name, sh.runtime.settings), question, user, thread_id):
                if ev.kind == "step":
                    status.update(label=f"Working… {ev.data.get('name')}")
                    status.write(f"✓ {ev.data.get('name')}")
                elif ev.kind == "token":
                    yield str(ev.data.get("text", ""))
                elif ev.kind in ("answer", "error"):
                    result[ev.kind] = ev.data

        try:
            with sh.lock, identity.acting_as(user):
                st.write_stream(tokens())
        except SovraError as exc:
            status.update(label="Failed", state="error")
            _error(exc)
            return
        if "error" in result:
            status.update(label="Failed", state="error")
            err = result["error"]
            _error(SovraError(str(err.get("message")), hint=err.get("hint")))
            return
        status.update(label="Done", state="complete")
    answer: Answer = result["answer"]["answer"]
    messages.append(answer)
    st.session_state["thread_id"] = thread_id or answer.thread_id or answer.run_id
    st.rerun()


def run_page(sh: Shared, user: User, run_id: str) -> None:
    st.subheader(f"Run {run_id}")
    if st.button("Back to the chat", key="back", icon=":material/arrow_back:"):
        st.session_state["open_run"] = None
        st.rerun()
    try:
        with sh.lock:
            records = session.load_run(sh.runtime.services.audit, run_id, user)
            a = session.answer_from_records(records)
    except AuditAccessError as exc:
        _error(exc)
        return
    except SovraError as exc:
        _error(exc)
        return
    st.markdown(f"**Question** (asked by {md(a.user)}): {md(a.question)}")
    st.markdown(f"**Answer** ({md(a.status or 'no answer')}): {md(a.text)}")
    for c in a.citations:
        st.caption(md(c.label()))
    how_it_was_made(sh, user, run_id, expanded=True)


def main() -> None:
    st.set_page_config(page_title="Sovra", page_icon="🔎", layout="wide")
    settings = Settings()
    try:
        sh = shared()
        user = login(sh, settings)
    except SovraError as exc:
        _error(exc)
        return
    if user is None:
        return
    conversations.sync_address(sh, user)  # ?c=<thread id>: a reload or a link reopens the conversation
    agent = sidebar(sh, user)
    if st.query_params.get("page") == "console":
        from sovra.ui.chat.console import console_page

        if st.button("Back to the chat", key="console_back", icon=":material/arrow_back:"):
            del st.query_params["page"]
            st.rerun()
        console_page(sh, user)
        return
    if st.query_params.get(viewer.VIEW_PARAM):
        viewer.viewer_page(sh, user)  # checks the user's access itself
        return
    open_run = st.session_state.get("open_run")
    if open_run:
        run_page(sh, user, open_run)
        return
    st.title("Ask Sovra")
    st.caption("Answers come only from documents you may read, with their sources. Every step is audited.")
    conversations.header(sh, user)
    for i, a in enumerate(st.session_state.get("messages", [])):
        turn(sh, user, a, i)
    question = st.chat_input("Ask a question about policies, contracts or payments")
    if question is None:
        question = conversations.take_pending()  # an example question or "Regenerate" was clicked
    if question is None and not st.session_state.get("messages"):
        conversations.examples(sh, agent)
    if question is not None:
        ask(sh, user, question, agent)
