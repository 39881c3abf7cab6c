"""The compliance console: a page of the chat for auditors and data-protection officers.

Drawn here, decided in :mod:`sovra.ui.compliance`, which checks the user on every call: the sidebar
shows the way in only to console users, but opening the page (``?page=console``) as anyone else gets
a refusal, recorded in the audit log, and nothing of the runs.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import streamlit as st

from sovra.errors import InputError, SovraError
from sovra.identity import User
from sovra.run_catalog import RunQuery
from sovra.ui.compliance import Console, Timeline, is_privacy_officer

ANY = "(any)"
PAGE_SIZE = 50
PHASE_ICONS = {
    "question": "❓",
    "plan": "🧭",
    "retrieval": "🔎",
    "tool": "🛠️",
    "model": "🧠",
    "approval": "✋",
    "refusal": "⛔",
    "answer": "✅",
    "error": "💥",
    "other": "•",
}


def _views() -> Any:
    from sovra.ui.chat import views  # the chat's helpers (md, md_table, errors); views imports this module lazily

    return views


def console_of(sh: Any) -> Console:
    """One console per server process, next to the chat's runtime."""
    console: Console | None = getattr(sh, "console", None)
    if console is None:
        rt = sh.runtime
        console = Console(rt.settings, rt.services.audit, rt.runs)
        sh.console = console
    return console


def _day(text: str, label: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{label}: {text!r} is not a date", hint="write it as YYYY-MM-DD") from None


def _chart(rows: list[dict[str, Any]], x: str, y: str, mark: str = "bar", title: str = "") -> None:
    """A Vega-Lite chart with its data inline in the spec (no Arrow transport: see views.md_table)."""
    spec = {
        "title": title,
        "data": {"values": rows},
        "mark": {"type": mark, "tooltip": True, **({"point": True} if mark == "line" else {})},
        "encoding": {
            "x": {"field": x, "type": "ordinal", "sort": None},
            "y": {"field": y, "type": "quantitative"},
        },
    }
    st.vega_lite_chart(spec=spec, width="stretch")


# ---------------------------------------------------------------------------------------------
# Runs


def _filters(console: Console, sh: Any, user: User) -> tuple[RunQuery, date | None, date | None]:
    with sh.lock:
        choices = console.choices(user)
    c1, c2, c3, c4 = st.columns(4)
    who = c1.selectbox("User", [ANY, *choices["users"]], key="cf_user")
    agent = c2.selectbox("Agent", [ANY, *choices["agents"]], key="cf_agent")
    tool = c3.selectbox("Tool", [ANY, *choices["tools"]], key="cf_tool")
    outcome = c4.selectbox("Outcome", [ANY, "refused", *choices["outcomes"]], key="cf_outcome")
    c5, c6, c7 = st.columns([2, 1, 1])
    document = c5.text_input("Document (id or words of its title)", key="cf_document")
    since = _day(c6.text_input("From (YYYY-MM-DD)", key="cf_since"), "From")
    until = _day(c7.text_input("To (YYYY-MM-DD)", key="cf_until"), "To")
    filters = (who, agent, tool, outcome, document, since, until)
    if st.session_state.get("cf_filters") != filters:  # new filters: back to the first page
        st.session_state["cf_filters"], st.session_state["cf_page"] = filters, 0
    page = int(st.session_state.get("cf_page", 0))
    query = RunQuery(
        user=None if who == ANY else who,
        agent=None if agent == ANY else agent,
        tool=None if tool == ANY else tool,
        outcome=None if outcome == ANY else outcome,
        document=document.strip() or None,
        since=since,
        until=until,
        limit=PAGE_SIZE,
        offset=page * PAGE_SIZE,
    )
    return query, since, until


def runs_tab(console: Console, sh: Any, user: User) -> None:
    v = _views()
    query, since, until = _filters(console, sh, user)
    with sh.lock:
        page = console.search(user, query)
    st.caption(f"{page.total:,} runs match; showing {len(page.entries)} from {query.offset + 1 if page.entries else 0}")
    if page.entries:
        st.markdown(
            v.md_table(
                [
                    {
                        "run": e.run_id,
                        "started (UTC)": e.started[:19].replace("T", " "),
                        "user": e.user_id or "",
                        "agent": e.agent or "",
                        "via": e.interface or "",
                        "outcome": e.outcome + (" · refused" if e.refused else ""),
                        "steps": e.steps,
                        "tools": ", ".join(e.tools),
                    }
                    for e in page.entries
                ]
            )
        )
    left, mid, right = st.columns([1, 1, 4])
    if left.button("Previous", key="cf_prev", disabled=query.offset == 0):
        st.session_state["cf_page"] = max(0, query.offset // PAGE_SIZE - 1)
        st.rerun()
    if mid.button("Next", key="cf_next", disabled=query.offset + PAGE_SIZE >= page.total):
        st.session_state["cf_page"] = query.offset // PAGE_SIZE + 1
        st.rerun()
    dated = since is not None or until is not None  # the button is drawn only with dates to export
    if dated and right.button(
        "Export these dates as a signed bundle", key="cf_export_range", icon=":material/verified:"
    ):
        with sh.lock:
            st.session_state["console_bundle"] = (
                f"sovra-audit-{since or ''}-{until or ''}.zip",
                console.export(user, since=since, until=until),
            )
    st.divider()
    ids = [e.run_id for e in page.entries]
    c1, c2 = st.columns([3, 1])
    picked = c1.selectbox("Open a run", ids, key="cf_pick", index=None, placeholder="a run id from the list")
    typed = c1.text_input("…or a run id", key="cf_run_id")
    if c2.button("Open run", key="cf_open", type="primary") and (typed.strip() or picked):
        with sh.lock:
            st.session_state["console_run"] = console.open_run(user, typed.strip() or str(picked))
        st.session_state.pop("console_replay", None)
    bundle = st.session_state.get("console_bundle")
    if bundle:
        st.download_button(
            "Download the signed bundle",
            bundle[1],
            file_name=bundle[0],
            mime="application/zip",
            key="cf_download",
            icon=":material/download:",
        )
    opened: Timeline | None = st.session_state.get("console_run")
    if opened is not None:
        run_view(console, sh, user, opened)


def run_view(console: Console, sh: Any, user: User, t: Timeline) -> None:
    v = _views()
    st.subheader(f"Run {t.run_id}")
    st.markdown(f"**Asked by** {v.md(t.user or '?')}: {v.md(t.question)}")
    st.markdown(f"**Outcome** {v.md(t.status)}: {v.md(t.answer)}")
    st.caption("model/adapter: " + (", ".join(t.models) or "none"))
    b1, b2, _ = st.columns([1, 1, 3])
    if b1.button("Replay", key="cf_replay", icon=":material/replay:"):
        try:
            with sh.lock:
                st.session_state["console_replay"] = console.replay(user, t.run_id, sh.runtime.services)
        except SovraError as exc:
            v._error(exc)
    if b2.button("Export as a signed bundle", key="cf_export_run", icon=":material/verified:"):
        with sh.lock:
            st.session_state["console_bundle"] = (f"sovra-audit-{t.run_id}.zip", console.export(user, run_id=t.run_id))
        st.rerun()
    diffs = st.session_state.get("console_replay")
    if diffs is not None:
        st.markdown("**Replay against today's index**" + ("" if diffs else ": nothing to replay"))
        for d in diffs:
            st.caption(v.md(f"record {d.seq} {d.kind}: {d.status} {d.note}"))
            for c in d.added:
                st.caption(v.md(f"+ {c}"))
            for c in d.removed:
                st.caption(v.md(f"- {c}"))
    st.markdown("**Timeline**")
    for s in t.steps:
        icon = PHASE_ICONS.get(s.phase, "•")
        st.markdown(f"{icon} **{v.md(s.title)}** · {v.md(s.ts[11:23])} · record {s.seq} · _{s.phase}_")
        for line in s.lines:
            st.caption(v.md(line))
        if s.table:
            st.markdown(v.md_table(s.table))
    st.markdown("**Sources cited**")
    if not t.sources:
        st.caption("none")
    for c in t.sources:
        page = f", p. {c.get('page')}" if c.get("page") is not None else ""
        st.caption(v.md(f"[{c.get('n')}] {c.get('title')}{page} · {c.get('url')} · chunk {c.get('chunk_id')}"))
        if c.get("quote"):
            st.caption(v.md(f"“{c['quote']}”"))


# ---------------------------------------------------------------------------------------------
# Chain, usage, data protection


def chain_tab(console: Console, sh: Any, user: User) -> None:
    v = _views()
    st.write(
        "Walks the whole hash chain (and every signature, with a signing key) and names the first record "
        "that does not check out."
    )
    if not st.button("Verify the chain", key="cf_verify", type="primary", icon=":material/verified_user:"):
        return
    with st.spinner("Verifying…"), sh.lock:
        check = console.verify(user)
    head = console.audit.head()
    if check.result.ok:
        st.success(f"Audit chain intact: {check.result.checked:,} records verified. Head {head.count}:{head.last_hash}")
        return
    st.error(f"Audit chain BROKEN at record {check.result.first_bad_seq}: {check.result.reason}", icon="🚨")
    if check.run_id:
        st.markdown(f"The first bad record belongs to run **{v.md(check.run_id)}**.")
    rows = [
        {
            "": "▶" if r.seq == check.result.first_bad_seq else "",
            "seq": r.seq,
            "run": r.run_id,
            "kind": r.kind,
            "time (UTC)": r.ts[:19],
            "hash": r.hash[:16] + "…",
        }
        for r in check.around
    ]
    if rows:
        st.markdown(v.md_table(rows))


def usage_tab(console: Console, sh: Any, user: User) -> None:
    c1, c2 = st.columns(2)
    since = _day(c1.text_input("From (YYYY-MM-DD)", key="cu_since"), "From")
    until = _day(c2.text_input("To (YYYY-MM-DD)", key="cu_until"), "To")
    with sh.lock:
        u = console.usage(user, since, until)
    m1, m2, m3 = st.columns(3)
    m1.metric("Questions", f"{u.runs:,}")
    m2.metric("Not found", f"{u.not_found_rate:.1%}")
    m3.metric("Refusals", f"{u.refusal_rate:.1%}")
    if not u.runs:
        st.info("No runs in this period.")
        return
    _chart([{"day": d, "questions": n} for d, n, _, _ in u.per_day], "day", "questions", "bar", "Questions per day")
    _chart(
        [{"day": d, "rate": round(nf / n, 4) if n else 0} for d, n, nf, _ in u.per_day],
        "day",
        "rate",
        "line",
        "Not-found rate per day",
    )
    _chart([{"agent": a, "questions": n} for a, n in u.per_agent], "agent", "questions", "bar", "Questions per agent")
    if u.top_sources:
        _chart([{"source": t, "runs": n} for _, t, n in u.top_sources], "source", "runs", "bar", "Most cited sources")


def protection_tab(console: Console, sh: Any, user: User) -> None:
    v = _views()
    settings = console.settings
    officer = is_privacy_officer(user, settings)
    if not officer:
        st.info(
            "Retention and erasure are for the data-protection officer "
            f"({', '.join(settings.privacy_officer_principals)}). You see the requests made."
        )
    else:
        st.markdown(
            "**Retention policy**: delete stored personal content older than N days. The records and the "
            "chain stay; `verify` still passes."
        )
        days = st.number_input(
            "Keep content for (days)", min_value=0, value=settings.audit_retention_days or 365, key="cp_days"
        )
        if st.button("Apply retention now", key="cp_retention"):
            with sh.lock:
                st.session_state["console_proof"] = console.retention(user, int(days)).as_dict()
        st.markdown(
            "**Erasure request** (GDPR art. 17): everything a data subject asked, in the audit log, their "
            "checkpoints and the run table."
        )
        c1, c2 = st.columns(2)
        subject = c1.text_input("Subject (user id)", key="cp_subject")
        reason = c2.text_input("Reason or request reference", key="cp_reason")
        if st.button("Erase the subject's content", key="cp_erase", type="primary"):
            with sh.lock:
                st.session_state["console_proof"] = console.erase_subject(user, subject, reason).as_dict()
        proof = st.session_state.get("console_proof")
        if proof:
            st.success(
                f"Done. Proof: audit record {proof['record_seq']}; the chain verifies: {proof['chain_verifies_after']}."
            )
            st.code(json.dumps(proof, indent=1, ensure_ascii=False), language="json")
    with sh.lock:
        done = console.requests(user)
    st.markdown("**Requests made**")
    if not done:
        st.caption("none yet")
        return
    st.markdown(
        v.md_table(
            [
                {
                    "record": r.seq,
                    "kind": r.kind,
                    "when (UTC)": r.ts[:19],
                    "by": r.user_id or "",
                    "values erased": (r.data or {}).get("erased", ""),
                    "runs": len((r.data or {}).get("runs") or []),
                    "subject": (r.data or {}).get("subject") or "",
                    "hash": r.hash[:16] + "…",
                }
                for r in done
            ]
        )
    )


def console_page(sh: Any, user: User) -> None:
    v = _views()
    console = console_of(sh)
    try:
        with sh.lock:
            console.require(user, "open")
    except SovraError as exc:
        st.title("Compliance console")
        v._error(exc)
        return
    st.title("Compliance console")
    st.caption(
        f"Signed in as {user.id} · every action here is recorded in the audit log · "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    tabs = st.tabs(["Runs", "Audit chain", "Usage", "Data protection"])
    for tab, draw in zip(tabs, (runs_tab, chain_tab, usage_tab, protection_tab), strict=True):
        with tab:
            try:
                draw(console, sh, user)
            except SovraError as exc:
                v._error(exc)
