"""General key-term extraction: every field of a contract is found (value + evidence), not stated,
or could not be determined (with the quotes that made it uncertain).

    from sovra.tools.terms import extract_fields
    fields = extract_fields({1: page_one_text, 2: page_two_text})
    fields["governing_law"].state, fields["governing_law"].value, fields["governing_law"].evidence

The layout (``layout``) cuts pages into passages with headings; each registered field extractor
(``fields``, ``parties``) proposes candidates from the passages about its field; ``resolve`` below
picks a value or says why it cannot. Values are typed in ``normalize`` (dates, durations, money,
jurisdictions) so two documents compare on meaning, not on wording.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, Field

from sovra.tools.terms import parties as _parties  # noqa: F401  (registers the parties extractor)
from sovra.tools.terms.fields import EXTRACTORS, Candidate, Reading
from sovra.tools.terms.layout import Passage, passages

State = Literal["found", "not_stated", "undetermined"]
_QUOTE = 360
_TIE = 0.75  # a rival value scoring within this of the best makes the field undetermined


class Quote(BaseModel):
    """A passage of the document: page, character span on the page, and its words."""

    page: int
    char_start: int
    char_end: int
    quote: str


class FieldResult(BaseModel):
    name: str
    label: str
    state: State
    value: Any = None  # JSON-safe: ISO date, "60 days", "Delaware, United States", list of [name, role], bool
    norm: str | None = None  # what documents compare on
    show: str = ""  # how the report prints it
    evidence: Quote | None = None
    candidates: list[dict[str, Any]] = Field(default_factory=list)  # rival values with quotes (undetermined)
    looked_at: list[Quote] = Field(default_factory=list)  # clauses about the field that gave no value
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.state == "found"


def _quote(p: Passage) -> Quote:
    text = p.text if len(p.text) <= _QUOTE else p.text[: _QUOTE - 1].rstrip() + "…"
    return Quote(page=p.page, char_start=p.start, char_end=p.end, quote=text)


def _heading_only(p: Passage) -> bool:
    """A passage that is just a heading ("12. Governing Law.") says less than its clause: list it last."""
    return bool(p.heading) and len(p.text) <= len(p.heading) + 12


def _json(v: Any) -> Any:
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, list):
        return [list(x) if isinstance(x, tuple) else x for x in v]
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    return str(v)


def resolve(name: str, label: str, reading: Reading) -> FieldResult:
    """One value, 'not stated', or 'could not determine' (rivals or unreadable clauses, quoted)."""
    if not reading.candidates:
        if not reading.cued:
            return FieldResult(name=name, label=label, state="not_stated", reason="no clause about it")
        return FieldResult(
            name=name,
            label=label,
            state="undetermined",
            looked_at=[_quote(p) for p in sorted(reading.cued, key=_heading_only)[:3]],
            reason="a clause is about it, but no value could be read from it",
        )
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for c in reading.candidates:
        groups[c.norm].append(c)
    ranked = sorted(groups.values(), key=lambda g: -(max(c.score for c in g) + 0.25 * (len(g) - 1)))
    best = max(ranked[0], key=lambda c: c.score)
    top = best.score + 0.25 * (len(ranked[0]) - 1)
    rivals = [max(g, key=lambda c: c.score) for g in ranked[1:]]
    rivals = [c for c in rivals if c.score + 0.25 * (len(groups[c.norm]) - 1) >= top - _TIE]
    if rivals:
        return FieldResult(
            name=name,
            label=label,
            state="undetermined",
            candidates=[{"value": c.show, **_quote(c.passage).model_dump()} for c in [best, *rivals][:4]],
            reason="the document states different values",
        )
    return FieldResult(
        name=name,
        label=label,
        state="found",
        value=_json(best.value),
        norm=best.norm,
        show=best.show,
        evidence=_quote(best.passage),
    )


def extract_fields(pages: dict[int, str], only: tuple[str, ...] | None = None) -> dict[str, FieldResult]:
    """Every registered field of a document, each found, not stated or undetermined."""
    ps = passages(pages)
    out: dict[str, FieldResult] = {}
    for name, (label, read) in EXTRACTORS.items():
        if only and name not in only:
            continue
        out[name] = resolve(name, label, read(ps))
    _link_effective_date(out, ps)
    return out


def _link_effective_date(out: dict[str, FieldResult], ps: list[Passage]) -> None:
    """'effective as of the date first written above' is the agreement date; so is an agreement made
    'as of' a date with no separate effective date (the date it takes effect)."""
    eff, agr = out.get("effective_date"), out.get("agreement_date")
    if eff is None or agr is None:
        return
    if eff.state == "found" and eff.norm == "=agreement_date":
        if agr.found:
            out["effective_date"] = agr.model_copy(
                update={"name": eff.name, "label": eff.label, "evidence": eff.evidence or agr.evidence}
            )
        else:
            out["effective_date"] = eff.model_copy(
                update={
                    "state": "undetermined",
                    "value": None,
                    "norm": None,
                    "reason": "it is the agreement date, which could not be read",
                }
            )
        return
    quote = agr.evidence.quote.lower() if agr.evidence else ""
    if eff.state == "not_stated" and agr.found and re.search(r"\bas\s+of\b|\beffective\b", quote):
        out["effective_date"] = agr.model_copy(
            update={"name": eff.name, "label": eff.label, "reason": "the agreement is made as of this date"}
        )


__all__ = ["FieldResult", "Quote", "State", "extract_fields", "resolve"]
