"""Users, groups and the principals that ACLs are written in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sovra.errors import ConfigError, UnknownUserError

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

    @classmethod
    def from_file(cls, path: Path) -> Directory:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(
                f"user directory {path} does not exist",
                hint="run `sovra demo` once, or set SOVRA_USERS_FILE",
            ) from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"user directory {path} is not valid JSON: {exc}") from exc
        users = {
            uid: User(id=uid, name=str(u.get("name", uid)), groups=tuple(u.get("groups", []))) for uid, u in raw.items()
        }
        return cls(users)

    def get(self, user_id: str) -> User:
        user = self._users.get(user_id)
        if user is None:
            known = ", ".join(sorted(self._users)) or "none"
            raise UnknownUserError(f"unknown user {user_id!r}", hint=f"known users: {known}")
        return user

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._users.values())
