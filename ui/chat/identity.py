"""Who is using the chat: an OIDC login (Streamlit's ``st.login`` when ``[auth]`` is configured in
``.streamlit/secrets.toml``), or, for development only, a user picked from the directory.

The OIDC claims map to a Sovra user with the same *group rule* as the HTTP API
(:mod:`sovra.ui.api_auth`): the user id is the ``SOVRA_OIDC_USERNAME_CLAIM`` claim (default
``preferred_username``, else ``email``); a user the directory knows keeps the directory's groups
narrowed to the ``SOVRA_OIDC_GROUPS_CLAIM`` claim when the token carries one; a user the directory
does not know gets exactly the claim's groups. The runtime looks users up by id, so the chat puts a
:class:`SessionDirectory` in front of the runtime's directory: while a session runs a question,
its user resolves to the user (and groups) the login established.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sovra.config import Settings
from sovra.errors import SovraError
from sovra.identity import ActingUserDirectory, Directory, User, user_from_login

log = logging.getLogger(__name__)

_acting: ContextVar[User | None] = ContextVar("sovra_chat_user", default=None)


class LoginError(SovraError):
    """The login cannot be mapped to a Sovra user."""


def user_from_claims(
    claims: Mapping[str, Any],
    directory: Directory,
    username_claim: str = "preferred_username",
    groups_claim: str = "groups",
) -> User:
    """The Sovra user an OIDC identity stands for (see the module docstring for the group rule)."""
    user_id = claims.get(username_claim) or claims.get("email")
    if not isinstance(user_id, str) or not user_id.strip():
        raise LoginError(
            f"your login carries neither a {username_claim!r} nor an 'email' claim",
            hint="ask the administrator to add the claim to the OIDC client's scopes",
        )
    raw = claims.get(groups_claim)
    token_groups: set[str] | None = None
    if raw is not None:
        items = [raw] if isinstance(raw, str) else [g for g in raw if isinstance(g, str)]
        token_groups = {g.removeprefix("group:") for g in items}
    return user_from_login(directory, user_id, claims.get("name"), token_groups)


class SessionDirectory(ActingUserDirectory):
    """The runtime's directory, except that the user acting in this thread resolves to the user
    their login established."""

    def __init__(self, base: Directory) -> None:
        super().__init__(base, _acting)


def install(rt: Any) -> SessionDirectory:
    """Put a SessionDirectory in front of ``rt``'s directory (once)."""
    current = rt.services.directory
    if not isinstance(current, SessionDirectory):
        current = SessionDirectory(current)
        rt.services.directory = current  # replaces the cached_property's value on this instance
    return current


@contextmanager
def acting_as(user: User) -> Iterator[None]:
    token = _acting.set(user)
    try:
        yield
    finally:
        _acting.reset(token)


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def dev_login_allowed(settings: Settings, bind_address: str | None = None) -> bool:
    """The development login (anyone picks any user) only when explicitly enabled and only while the
    chat listens on loopback alone: an unset Streamlit address means every interface."""
    if not settings.ui_dev_login:
        return False
    if bind_address is None:
        import streamlit as st

        bind_address = st.get_option("server.address") or os.environ.get("STREAMLIT_SERVER_ADDRESS") or ""
    if bind_address not in LOOPBACK and not bind_address.startswith("127."):
        log.error("SOVRA_UI_DEV_LOGIN is refused: the chat listens on %r, not on loopback only", bind_address or "*")
        return False
    return True
