"""Users, groups and the principals that ACLs are written in."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from sovra.errors import ConfigError, UnknownUserError

log = logging.getLogger(__name__)

PUBLIC = "group:everyone"


@dataclass(frozen=True)
class User:
    id: str
    name: str
    groups: tuple[str, ...]

    @property
    def principals(self) -> list[str]:
        """What this user may read as: themselves, their groups, and everyone."""
        return sorted({f"user:{self.id}", PUBLIC, *(f"group:{g}" for g in self.groups)})


class Directory:
    """A static identity directory read from a JSON file: ``{"alice": {"name": .., "groups": [..]}}``.

    Production deployments map OIDC/Entra identities onto the same ``User`` type.
    """

    def __init__(self, users: dict[str, User]) -> None:
        self._users = users
        self._path: Path | None = None
        self._stamp: tuple[int, int, int] | None = None

    @classmethod
    def from_file(cls, path: Path) -> Directory:
        """The directory in ``path``, re-read whenever the file changes (one ``stat`` per lookup), so
        a user removed or a group taken away counts from the next request on, without a restart."""
        directory = cls(_read_users(path))
        directory._path = path
        directory._stamp = _stamp(path)
        return directory

    def _refresh(self) -> None:
        if self._path is None:
            return
        stamp = _stamp(self._path)
        if stamp == self._stamp:
            return
        try:
            users = _read_users(self._path)
        except ConfigError as exc:
            # Half-written or removed: nobody may act until it is valid again (closed, not stale).
            log.error("%s; no user is known until it is fixed", exc.message)
            users = {}
        self._users, self._stamp = users, stamp

    def get(self, user_id: str) -> User:
        self._refresh()
        user = self._users.get(user_id)
        if user is None:
            known = ", ".join(sorted(self._users)) or "none"
            raise UnknownUserError(f"unknown user {user_id!r}", hint=f"known users: {known}")
        return user

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._refresh()
        return iter(list(self._users.values()))


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read_users(path: Path) -> dict[str, User]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"user directory {path} does not exist",
            hint="run `sovra demo` once, or set SOVRA_USERS_FILE",
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"user directory {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"user directory {path} must map user ids to users")
    return {
        uid: User(id=uid, name=str(u.get("name", uid)), groups=tuple(u.get("groups", []))) for uid, u in raw.items()
    }


class ActingUserDirectory(Directory):
    """A directory in front of another, where the user acting in the current context (a request,
    a chat session) resolves to the user their login established: an OIDC user may be unknown to
    the base directory, or hold fewer groups than it lists. ``acting`` is a context variable, so
    concurrent requests or sessions never see each other's user."""

    def __init__(self, base: Directory, acting: ContextVar[User | None]) -> None:
        super().__init__({})
        self.base = base
        self.acting = acting

    def get(self, user_id: str) -> User:
        current = self.acting.get()
        if current is not None and current.id == user_id:
            return current
        return self.base.get(user_id)

    def __iter__(self) -> Iterator[User]:
        return iter(self.base)


def user_from_login(directory: Directory, user_id: str, name: object, token_groups: set[str] | None) -> User:
    """The user an OIDC login (API token or chat login) stands for. The group rule: a user the
    directory knows keeps the directory's groups, narrowed to the token's groups when the token
    carries a groups claim; a user it does not know gets exactly the token's groups, or none. So a
    user never holds more than both the directory and the token grant."""
    try:
        known = directory.get(user_id)
    except UnknownUserError:
        return User(user_id, name if isinstance(name, str) else user_id, tuple(sorted(token_groups or ())))
    groups = known.groups if token_groups is None else tuple(g for g in known.groups if g in token_groups)
    return User(known.id, known.name, groups)
