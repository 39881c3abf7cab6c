"""Personal data in the audit log: redaction patterns, sealing of private fields, and who may read.

Sealing is what makes GDPR erasure compatible with a hash chain. Before a record is hashed, the
value of every *private field* (question, prompt, output, answer, ...) is moved out to a content
table and replaced in the record by ``{"$sovra.content": ref}`` where
``ref = sha256(salt || canonical JSON of the value)``. The chain hashes the ref, never the value,
so deleting the content row later removes the data but leaves every record — and the proof —
intact. The random per-value salt stops anyone from confirming a guess ("did alice ask about X?")
by hashing candidates against the ref once the content is gone.

Redaction is a second, independent layer: with a :class:`Redactor` configured, even the sealed
content is stored with e-mail addresses, IBANs, phone and card numbers and known names replaced by
placeholders. It is a documented pattern set rather than presidio, because presidio needs a spaCy
model downloaded at install time and this project must run offline; the patterns favour precision
on banking text (IBANs are checked with mod-97, card numbers with Luhn).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sovra.identity import User

CONTENT_KEY = "$sovra.content"
ERASED = "[erased]"
AUDITOR_GROUP = "auditor"

# Keys whose values are personal or free text: sealed wherever they appear in a record's data.
DEFAULT_PRIVATE_FIELDS: frozenset[str] = frozenset(
    {
        "question", "answer", "prompt", "output", "messages", "query", "search_query", "text",
        "evidence", "sentences", "quote", "summary", "headline", "counterparty", "notes",
        # Free text a person or a tool wrote about a run: an approval's reason, a pause's description
        # (it spells out the tool's arguments).
        "reason", "description",
    }
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Redaction


def _iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(digits) % 97 == 1


def _luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _redact_card(m: re.Match[str]) -> str:
    """Replace the longest digit-group-aligned window that passes Luhn.

    A digit run may carry a neighbouring number ("invoice 1 4111 1111 1111 1111"): the whole run
    then fails Luhn while the card inside it does not.
    """
    s = m.group(0)
    starts = [0, *(i + 1 for i, c in enumerate(s) if c in " -")]
    ends = [len(s), *(i for i, c in enumerate(s) if c in " -")]
    windows = sorted(((a, b) for a in starts for b in ends if b > a), key=lambda w: w[0] - w[1])
    for a, b in windows:
        if _luhn_ok(s[a:b]):
            return f"{s[:a]}[CARD]{s[b:]}"
    return s


@dataclass(frozen=True)
class Pattern:
    label: str
    regex: re.Pattern[str]
    check: Callable[[str], bool] | None = None
    replace: Callable[[re.Match[str]], str] | None = None  # instead of check + "[LABEL]"


# Order matters: an IBAN contains digit runs a phone pattern would also take.
PATTERNS: tuple[Pattern, ...] = (
    Pattern("EMAIL", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    Pattern("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), _iban_ok),
    Pattern("CARD", re.compile(r"\b\d(?:[ -]?\d){12,30}\b"), replace=_redact_card),  # bounded: windows are O(n^2)
    Pattern(
        "PHONE",
        re.compile(
            r"(?<![\w+])(?:(?:\+|00)[1-9]\d{0,2}[ ./-]?(?:\(0\)[ ./-]?)?(?:\d[ ./-]?){5,12}\d"
            r"|\(?0\d{2,4}\)?[ /-]\d{3,}(?:[ -]\d{2,})*)(?!\w)"
        ),
    ),
    Pattern(
        "NAME",
        re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Herr|Frau|Mme|M)\.? (?:[A-Z][a-zäöüéè'-]+)(?: [A-Z][a-zäöüéè'-]+)?"),
    ),
)


@dataclass
class Redactor:
    """Replaces personal data in text with ``[LABEL]`` placeholders.

    ``names`` are matched as whole words, case-insensitively (feed it the identity directory's
    names and customer names you know); ``labels`` limits which built-in patterns run.
    """

    names: Iterable[str] = ()
    labels: frozenset[str] = frozenset(p.label for p in PATTERNS)
    _names_re: re.Pattern[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        parts = sorted({n.strip() for n in self.names if n and n.strip()}, key=len, reverse=True)
        if parts:
            self._names_re = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in parts) + r")\b", re.IGNORECASE)

    @classmethod
    def for_users(cls, users: Iterable[User], extra_names: Iterable[str] = ()) -> Redactor:
        """A redactor that also knows every user's display name and each part of it."""
        names: list[str] = list(extra_names)
        for u in users:
            if u.name and u.name != u.id:
                names.append(u.name)
                names.extend(p for p in u.name.split() if len(p) > 2)
        return cls(names=names)

    def redact(self, text: str) -> str:
        for p in PATTERNS:
            if p.label not in self.labels:
                continue
            check = p.check

            def sub(m: re.Match[str], label: str = p.label, check: Callable[[str], bool] | None = check) -> str:
                return f"[{label}]" if check is None or check(m.group(0)) else m.group(0)

            text = p.regex.sub(p.replace or sub, text)
        if self._names_re is not None:
            text = self._names_re.sub("[NAME]", text)
        return text

    def redact_value(self, value: Any) -> Any:
        """Redact every string inside a JSON value (keys are left alone)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        return value


# ---------------------------------------------------------------------------------------------
# Sealing


@dataclass(frozen=True)
class Content:
    """One sealed value: stored in the content table, referenced from the chain by ``ref``."""

    ref: str
    salt: str  # hex
    value: str  # canonical JSON of the (redacted) value


def content_ref(salt_hex: str, value_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt_hex) + value_text.encode("utf-8")).hexdigest()


def seal(
    data: Any,
    private_fields: frozenset[str],
    dumps: Callable[[Any], str],
    redactor: Redactor | None = None,
) -> tuple[Any, list[Content]]:
    """Split JSON ``data`` into what the chain hashes and the private values stored apart."""
    out: list[Content] = []

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            res: dict[str, Any] = {}
            for k, x in v.items():
                if k in private_fields and x not in (None, "", [], {}):
                    text = dumps(redactor.redact_value(x) if redactor else x)
                    salt = os.urandom(16).hex()
                    c = Content(content_ref(salt, text), salt, text)
                    out.append(c)
                    res[k] = {CONTENT_KEY: c.ref}
                else:
                    res[k] = walk(x)
            return res
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(data), out


def refs_in(data: Any) -> list[str]:
    """Every content ref a sealed record points at."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if len(v) == 1 and isinstance(v.get(CONTENT_KEY), str):
                found.append(v[CONTENT_KEY])
                return
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(data)
    return found


def unseal(data: Any, contents: Mapping[str, Any]) -> Any:
    """Put the private values back; values that were erased read as ``"[erased]"``."""
    if isinstance(data, dict):
        if len(data) == 1 and isinstance(data.get(CONTENT_KEY), str):
            return contents.get(data[CONTENT_KEY], ERASED)
        return {k: unseal(v, contents) for k, v in data.items()}
    if isinstance(data, list):
        return [unseal(v, contents) for v in data]
    return data


# ---------------------------------------------------------------------------------------------
# Access


def is_auditor(user: User) -> bool:
    return AUDITOR_GROUP in user.groups


def can_read_run(viewer: User, owner_id: str | None) -> bool:
    """A user reads their own runs; only members of the ``auditor`` group read everyone's."""
    return is_auditor(viewer) or (owner_id is not None and viewer.id == owner_id)
