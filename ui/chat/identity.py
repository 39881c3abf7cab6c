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


# ---------------------------------------------------------------------------------------------
# Staying signed in across a page reload (development login)

LOGIN_PARAM = "login"  # the query parameter that carries the signed token
LOGIN_TTL_S = 12 * 3600
_KEY_FILE = "chat-login.key"
_LOGOUTS_FILE = "chat-logouts.json"  # user id -> when they last logged out (ms): older tokens are void


def _login_key(settings: Settings) -> bytes:
    """The secret that signs login tokens: 32 random bytes in ``<data_dir>/chat-login.key`` (0600),
    made on first use. Deleting the file signs everyone out."""
    import secrets

    root = settings.paths.root
    root.mkdir(parents=True, exist_ok=True)
    path = root / _KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
        path.unlink()  # empty or cut short (a crash while writing it): make a new one
        return _login_key(settings)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    return path.read_bytes()


def login_token(settings: Settings, user_id: str, now: float | None = None) -> str:
    """``<user id, base64>.<expiry, ms>.<HMAC-SHA256>``: who signed in, until when, signed with the
    data dir's secret. Nobody can make one for another user without that file."""
    import base64
    import hashlib
    import hmac
    import time

    expires = int(((now if now is not None else time.time()) + LOGIN_TTL_S) * 1000)
    body = f"{base64.urlsafe_b64encode(user_id.encode()).decode().rstrip('=')}.{expires}"
    mac = hmac.new(_login_key(settings), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def user_from_token(settings: Settings, token: str, now: float | None = None) -> str | None:
    """The user id a token was signed for, or None when it is forged, altered, expired or older than
    the user's last "Log out"."""
    import base64
    import binascii
    import hashlib
    import hmac
    import time

    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    body = f"{parts[0]}.{parts[1]}"
    mac = hmac.new(_login_key(settings), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, parts[2]):
        return None
    expires_ms = int(parts[1])
    if expires_ms < (now if now is not None else time.time()) * 1000:
        return None
    try:
        user_id = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    logouts = _logouts(settings)
    if logouts is None or expires_ms - LOGIN_TTL_S * 1000 <= logouts.get(user_id, -1):
        return None  # issued before the user logged out (or the record is unreadable: fail closed)
    return user_id


def _logouts(settings: Settings) -> dict[str, int] | None:
    import json

    path = settings.paths.root / _LOGOUTS_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        log.warning("%s is unreadable: every development sign-in by address is refused", path)
        return None
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}


def revoke_logins(settings: Settings, user_id: str, now: float | None = None) -> None:
    """Log out: every token of ``user_id`` issued until now stops working (copies of the address too)."""
    import json
    import tempfile
    import time

    root = settings.paths.root
    root.mkdir(parents=True, exist_ok=True)
    data = _logouts(settings) or {}
    data[user_id] = int((now if now is not None else time.time()) * 1000)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".chat-logouts.")  # 0600; replaced atomically
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, root / _LOGOUTS_FILE)
