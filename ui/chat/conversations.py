"""The chat's conversations and everyday comfort, drawn: the sidebar list (search, rename, delete),
the open conversation's address (``?c=<thread id>``, so a reload or a link reopens it), example
questions on the empty screen, copy and regenerate under each answer, agents by plain names.

The rules (whose conversation, what a delete does, what is audited) are
:class:`sovra.conversations.Conversations`'; this module only draws and keeps the session state.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import streamlit as st

from sovra.config import Settings
from sovra.conversations import Conversation, Conversations, ConversationStore
from sovra.errors import SovraError
from sovra.identity import User
from sovra.runtime import Answer
from sovra.ui.audit_report import load_run
from sovra.ui.chat import session

if TYPE_CHECKING:
    from sovra.ui.chat.views import Shared

log = logging.getLogger(__name__)

THREAD_PARAM = "c"
PENDING = "pending_question"
MAX_EXAMPLES = 6


def service(sh: Shared) -> Conversations:
    """The process's conversation service (one store per runtime, closed with it)."""
    conv: Conversations | None = getattr(sh, "conversations", None)
    if conv is None:
        rt = sh.runtime
        conv = Conversations(rt.runs, ConversationStore(rt.settings), rt.services.audit)
        sh.conversations = conv  # type: ignore[attr-defined]
    return conv


def close(sh: Shared) -> None:
    conv: Conversations | None = getattr(sh, "conversations", None)
    if conv is not None:
        conv.store.close()


# ---------------------------------------------------------------------------------------------
# Which conversation is open


def _show(messages: list[Answer], thread_id: str | None) -> None:
    st.session_state["messages"] = messages
    st.session_state["thread_id"] = thread_id
    st.session_state["open_run"] = None


def load(sh: Shared, user: User, thread_id: str) -> list[Answer]:
    """The answers of the user's conversation ``thread_id`` (ConversationNotFound otherwise)."""
    with sh.lock:
        conv = service(sh).get(user.id, thread_id)
        return [
            session.answer_from_records(load_run(sh.runtime.services.audit, rid, user), sh.runtime)
            for rid in conv.run_ids
        ]


# The buttons below act in on_click callbacks: they run before the page is drawn again, so the list,
# the chat and the address all show the outcome in that run (an st.rerun() would drop the address
# change). A failure is kept for the page to show.
_FAILED = "conversation_error"


def open_conversation(sh: Shared, user: User, thread_id: str) -> None:
    try:
        messages = load(sh, user, thread_id)
    except SovraError as exc:
        st.session_state[_FAILED] = exc
        return
    _show(messages, thread_id)  # sync_address gives it its address


def show_failure() -> None:
    exc = st.session_state.pop(_FAILED, None)
    if isinstance(exc, SovraError):
        _error(exc)


def new_conversation() -> None:
    _show([], None)  # sync_address drops the old address


def sync_address(sh: Shared, user: User) -> None:
    """Keep ``?c=`` and the open conversation together: an address the browser brought (a reload, a
    link) opens that conversation, after the owner check; otherwise the address follows the session
    (a conversation opened or started here, none after "New conversation" or a delete)."""
    wanted = st.query_params.get(THREAD_PARAM)
    if wanted != st.session_state.get("url_thread"):  # the address changed outside this session
        st.session_state["url_thread"] = wanted
        if wanted:
            try:
                _show(load(sh, user, wanted), wanted)
            except SovraError as exc:
                _show([], None)
                st.query_params.pop(THREAD_PARAM, None)
                st.session_state["url_thread"] = None
                _error(exc)
            return
    current = st.session_state.get("thread_id")
    if current != wanted:
        if current:
            st.query_params[THREAD_PARAM] = current
        else:
            st.query_params.pop(THREAD_PARAM, None)
        st.session_state["url_thread"] = current


# ---------------------------------------------------------------------------------------------
# The sidebar list


def _label(c: Conversation) -> str:
    title = c.title if len(c.title) <= 60 else c.title[:59] + "…"
    return f"{title} · {datetime.fromtimestamp(c.updated).strftime('%d %b %H:%M')}"


def sidebar_list(sh: Shared, user: User) -> None:
    """New conversation, search, and the user's conversations, each once, newest first."""
    st.button("New conversation", key="new_conversation", icon=":material/add:", on_click=new_conversation)
    st.subheader("Your conversations")
    query = st.text_input(
        "Search your conversations",
        key="conv_search",
        placeholder="Search titles and questions",
        label_visibility="collapsed",
    )
    try:
        with sh.lock:
            found = service(sh).list(user.id, query)
    except SovraError as exc:
        _error(exc)
        return
    if not found:
        st.caption("No conversation matches." if query.strip() else "No conversations yet.")
    for c in found:
        current = c.thread_id == st.session_state.get("thread_id")
        st.button(
            _label(c),
            key=f"conv-{c.thread_id}",
            type="secondary" if current else "tertiary",
            on_click=open_conversation,
            args=(sh, user, c.thread_id),
        )


def header(sh: Shared, user: User) -> None:
    """The open conversation's title with Rename and Delete (the owner's only: the service checks)."""
    show_failure()
    thread_id = st.session_state.get("thread_id")
    if not thread_id:
        return
    try:
        with sh.lock:
            c = service(sh).get(user.id, thread_id)
    except SovraError:
        return  # a conversation just started elsewhere or gone: nothing to rename
    left, right = st.columns([5, 2], vertical_alignment="center")
    left.markdown(f"**{_md(c.title)}**")
    with right.popover("Rename or delete", icon=":material/edit:"):
        key = f"title-{c.thread_id}"
        st.text_input("New title", value=c.title, key=key, max_chars=120)
        args = (sh, user, c.thread_id)
        st.button("Rename", key=f"rename-{c.thread_id}", icon=":material/edit:", on_click=_rename, args=(*args, key))
        st.button(
            "Delete conversation", key=f"delete-{c.thread_id}", icon=":material/delete:", on_click=_delete, args=args
        )


def _md(text: str) -> str:
    from sovra.ui.chat.views import md

    return md(text)


def _rename(sh: Shared, user: User, thread_id: str, key: str) -> None:
    try:
        with sh.lock:
            service(sh).rename(user.id, thread_id, str(st.session_state.get(key) or ""))
    except SovraError as exc:
        st.session_state[_FAILED] = exc


def _delete(sh: Shared, user: User, thread_id: str) -> None:
    try:
        with sh.lock:
            service(sh).delete(user.id, thread_id)
    except SovraError as exc:
        st.session_state[_FAILED] = exc
        return
    if st.session_state.get("thread_id") == thread_id:
        new_conversation()


# ---------------------------------------------------------------------------------------------
# Example questions, copy, regenerate


def example_questions(settings: Settings, agent: Any = None) -> list[str]:
    """SOVRA_CHAT_EXAMPLES, else the data dir's chat-examples.json, else the agent's ``examples``."""
    found: list[str] = list(settings.chat_examples)
    if not found:
        path = settings.paths.root / "chat-examples.json"
        try:
            raw = json.loads(path.read_text()) if path.is_file() else []
        except (OSError, ValueError) as exc:
            log.warning("%s is not a JSON list of questions: %s", path, exc)
            raw = []
        found = [q for q in raw if isinstance(q, str)] if isinstance(raw, list) else []
    if not found and agent is not None:
        found = [q for q in getattr(agent, "examples", ()) or () if isinstance(q, str)]
    return [q.strip() for q in found if q.strip()][:MAX_EXAMPLES]


def _ask_later(question: str) -> None:
    st.session_state[PENDING] = question


def take_pending() -> str | None:
    """A question asked by a click (an example, regenerate), to be asked in this script run."""
    q = st.session_state.pop(PENDING, None)
    return str(q) if q else None


def examples(sh: Shared, agent_name: str) -> None:
    """Example questions on the empty screen; clicking one asks it."""
    agent = None
    try:
        from sovra.agents import get_agent

        agent = get_agent(agent_name, sh.runtime.settings)
    except SovraError:
        pass  # the examples from the settings still show; asking names the problem
    questions = example_questions(Settings(), agent)  # read per page, as main() reads its settings
    if not questions:
        return
    st.caption("Try one of these:")
    cols = st.columns(min(len(questions), 3))
    for i, q in enumerate(questions):
        cols[i % len(cols)].button(q, key=f"example-{i}", on_click=_ask_later, args=(q,), icon=":material/help:")


def answer_actions(a: Answer, index: int) -> None:
    """Copy (the answer's text, with Streamlit's copy button) and regenerate (the same question
    asked again in this conversation)."""
    if a.status == "awaiting_approval" or not a.text:
        return
    left, right, _ = st.columns([1, 1, 6])
    with left.popover("Copy", icon=":material/content_copy:"):
        st.caption("The answer as text (the icon at the top right copies it):")
        st.code(a.text, language=None, wrap_lines=True)
    right.button(
        "Regenerate",
        key=f"regen-{index}-{a.run_id}",
        icon=":material/refresh:",
        on_click=_ask_later,
        args=(a.question,),
        help="Ask the same question again in this conversation",
    )


# ---------------------------------------------------------------------------------------------
# Agents by plain names


def agent_choices(settings: Any) -> list[tuple[str, str, str]]:
    """(name, title, description) of the registered agents; the title is the agent's ``title``, else
    its name in words."""
    out = []
    for name, description in session.available_agents(settings):
        title = ""
        try:
            from sovra.agents import get_agent

            title = str(getattr(get_agent(name, settings), "title", "") or "")
        except (SovraError, ImportError):
            pass
        out.append((name, title or name.replace("-", " ").replace("_", " ").capitalize(), description))
    return out


def agent_picker(settings: Any) -> str:
    if "agent_choices" not in st.session_state:  # builds each agent once per browser session
        st.session_state["agent_choices"] = agent_choices(settings)
    choices: list[tuple[str, str, str]] = st.session_state["agent_choices"]
    titles = {n: t for n, t, _ in choices}
    descriptions = {n: d for n, _, d in choices}
    agent = st.selectbox(
        "Agent", list(titles), key="agent", format_func=lambda n: titles.get(n, n), help="Which agent answers."
    )
    st.caption(descriptions.get(agent, ""))
    return str(agent)


def _error(exc: SovraError) -> None:
    from sovra.ui.chat.views import _error as show

    show(exc)
