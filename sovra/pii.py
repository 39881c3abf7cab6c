"""Masking of personal data in prompts bound for a model the bank does not run itself.

Pattern-based and deliberately conservative: e-mail addresses, IBANs, payment card numbers (Luhn
checked) and phone numbers become placeholders such as ``<EMAIL_1>``. The same value gets the same
placeholder within one call, so the model can still refer to it, and the reply is unmasked before
the caller sees it. Names and free-text identifiers are NOT detected: that needs an NER model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    ("CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b")),
    # International (+41 ...) or national trunk-prefixed (044 ...) numbers; bare digit groups are
    # more often account or reference numbers.
    ("PHONE", re.compile(r"(?<![\w+])(?:\+\d{1,3}|0)[ ./-]?\(?\d{1,4}\)?(?:[ ./-]?\d{2,4}){2,4}\b")),
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass
class Masker:
    """Masks one call's messages and unmasks the reply with the same table."""

    table: dict[str, str] = field(default_factory=dict)  # placeholder -> original
    _by_value: dict[str, str] = field(default_factory=dict)

    def mask(self, text: str) -> str:
        for kind, pattern in _PATTERNS:
            text = pattern.sub(lambda m, k=kind: self._placeholder(k, m.group(0)), text)  # type: ignore[misc]
        return text

    def _placeholder(self, kind: str, value: str) -> str:
        if kind == "CARD" and not _luhn_ok(re.sub(r"\D", "", value)):
            return value  # an account or reference number, not a card: leave it
        if value not in self._by_value:
            n = sum(1 for p in self.table if p.startswith(f"<{kind}_")) + 1
            ph = f"<{kind}_{n}>"
            self._by_value[value] = ph
            self.table[ph] = value
        return self._by_value[value]

    def mask_messages(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{**m, "content": self.mask(m["content"])} if isinstance(m.get("content"), str) else m for m in messages]

    def unmask(self, text: str) -> str:
        for ph, value in self.table.items():
            text = text.replace(ph, value)
        return text
