"""The chat's sidebar parts for files a person uploads to ask about, and the search filters.

Thin: the store (:mod:`sovra.connectors.uploads`) checks limits, ownership and sharing and writes
the audit records; the filters become a :class:`~sovra.search_scope.SearchScope` that the runtime
applies to every search of the next question. Filter choices offered are the sources and document
types of documents the user may read (ACL applied in the index), never names of others' documents.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import streamlit as st

from sovra.connectors.uploads import UploadStore, size_words
from sovra.errors import SovraError
from sovra.identity import User
from sovra.index.base import SearchFilter
from sovra.search_scope import SearchScope

log = logging.getLogger(__name__)

SCOPE_KEY = "search_scope"
_FACETS_KEY = "search_facets"


def store(sh: Any) -> UploadStore:
    svc = sh.runtime.services
    return UploadStore(sh.runtime.settings, svc.index, svc.embedder, svc.audit, sh.directory.base)


def _error(exc: SovraError) -> None:
    st.error(exc.message + (f"  \nHint: {exc.hint}" if exc.hint else ""), icon="🚫")


def _facets(sh: Any, user: User) -> tuple[list[str], list[str]]:
    """Sources and document types of what ``user`` may read, read once per browser session (and
    again after an upload or removal)."""
    cached = st.session_state.get(_FACETS_KEY)
    if cached and cached[0] == user.id:
        return cached[1], cached[2]
    from sovra.errors import IndexMissingError

    try:
        with sh.lock:
            hits = sh.runtime.services.index.chunks(
                SearchFilter(principals=tuple(user.principals)), fields=["doc_type"]
            )
    except IndexMissingError:
        hits = []
    sources = sorted({h.source for h in hits})
    types = sorted({h.doc_type for h in hits})
    st.session_state[_FACETS_KEY] = (user.id, sources, types)
    return sources, types


def _forget_facets() -> None:
    st.session_state.pop(_FACETS_KEY, None)


def chosen_scope() -> SearchScope | None:
    """The filters picked in the sidebar, for the next question (None: search everything)."""
    scope = st.session_state.get(SCOPE_KEY)
    return scope if isinstance(scope, SearchScope) and not scope.empty else None


def sidebar_section(sh: Any, user: User) -> None:
    """Drawn inside ``st.sidebar``: search filters, then the user's files."""
    _filters(sh, user)
    _files(sh, user)


def _filters(sh: Any, user: User) -> None:
    active = chosen_scope()
    with st.expander("Search filters" + (" (on)" if active else ""), icon=":material/filter_list:"):
        sources, types = _facets(sh, user)
        picked_sources = st.multiselect("Sources", sources, key="filter_sources", placeholder="All sources")
        picked_types = st.multiselect("Document types", types, key="filter_types", placeholder="All types")
        use_dates = st.checkbox(
            "Only documents in force in a period",
            key="filter_use_dates",
            help="Documents without an effective date (most policies, your uploads) are left out when this is on.",
        )
        start = end = None
        if use_dates:
            today = sh.runtime.settings.today
            picked = st.date_input(
                "Effective between",
                value=(dt.date(today.year, 1, 1), today),
                key="filter_dates",
                format="YYYY-MM-DD",
            )
            if isinstance(picked, tuple) and len(picked) == 2:
                start, end = picked
            elif isinstance(picked, tuple) and len(picked) == 1:
                start = picked[0]
        try:
            scope = SearchScope(tuple(picked_sources), tuple(picked_types), start, end)
        except SovraError as exc:
            _error(exc)
            scope = SearchScope()
        st.session_state[SCOPE_KEY] = scope
        if not scope.empty:
            st.caption("Your next questions search only what these filters keep.")


def _files(sh: Any, user: User) -> None:
    settings = sh.runtime.settings
    types = sorted({t.lower().lstrip(".") for t in settings.upload_types})
    st.subheader("Your files")
    st.caption(
        f"Upload a file to ask about it ({', '.join(types)}; up to {size_words(settings.upload_max_bytes)}). "
        "Only you can read it until you share it."
    )
    n = st.session_state.setdefault("upload_round", 0)
    file = st.file_uploader(
        "Upload a file",
        type=types,
        key=f"uploader-{n}",
        label_visibility="collapsed",
        max_upload_size=max(1, math.ceil(settings.upload_max_bytes / 2**20)),  # Streamlit's MB are MiB
    )
    done = st.session_state.pop("upload_done", None)
    if done:
        st.success(done, icon=":material/check:")
    if file is not None:
        try:
            with st.spinner("Reading and indexing the file…"), sh.lock:
                up = store(sh).add(user, file.name, file.getvalue())
        except SovraError as exc:
            _error(exc)
        else:
            st.session_state["upload_round"] = n + 1  # a fresh, empty uploader
            st.session_state["upload_done"] = f"{up.name} is ready: ask about it."
            _forget_facets()
            st.rerun()
    try:
        with sh.lock:
            mine = store(sh).mine(user)
    except SovraError as exc:
        _error(exc)
        return
    people = sorted(u.id for u in sh.directory.base if u.id != user.id)
    groups = sorted({f"group:{g}" for u in sh.directory.base for g in u.groups})
    for up in mine:
        who = ", ".join(["you", *(p.removeprefix("user:") for p in up.shared_with)]) if up.shared_with else "only you"
        with st.expander(f"{up.name} · {size_words(up.size)}", icon=":material/draft:"):
            st.caption(f"Readable by: {who}")
            picked = st.multiselect(
                "Share with",
                people + groups,
                default=[p.removeprefix("user:") if p.startswith("user:") else p for p in up.shared_with],
                key=f"share-{up.doc_id}",
                placeholder="Nobody else",
            )
            if st.button("Save sharing", key=f"share-save-{up.doc_id}", icon=":material/share:"):
                try:
                    with sh.lock:
                        store(sh).share(user, up.doc_id, picked)
                except SovraError as exc:
                    _error(exc)
                else:
                    st.rerun()
            if st.button("Remove file", key=f"remove-{up.doc_id}", icon=":material/delete:"):
                try:
                    with sh.lock:
                        store(sh).remove(user, up.doc_id)
                except SovraError as exc:
                    _error(exc)
                else:
                    st.session_state["upload_done"] = f"{up.name} was removed: no one can search it any more."
                    _forget_facets()
                    st.rerun()
