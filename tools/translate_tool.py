"""``translate_passage``: the translation tool agents call (and the MCP server and the HTTP API can
expose): a passage translated with the served ``translation`` route and checked, recorded in the
calling run (``model.call`` and ``translate.segment`` records, as ``sovra translate`` writes)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sovra.tools.base import ToolContext, tool
from sovra.tools.translate import segments, translate_segments

Lang = Literal["en", "fr", "de", "nl", "it", "es"]
Status = Literal["changed", "could_not_check", "preserved", "no_facts"]


class TranslateArgs(BaseModel):
    text: str = Field(min_length=1, max_length=20_000, description="The passage to translate.")
    to: Lang = Field(description="Target language (ISO 639-1).")
    source: Lang = Field(description="Language the passage is written in (ISO 639-1).")


class FactChange(BaseModel):
    kind: str
    source: str | None
    translation: str | None


class TranslatedPassage(BaseModel):
    translation: str
    status: Status = Field(
        description="preserved only when every fact of every paragraph was verified in the translation"
    )
    changes: list[FactChange] = Field(default_factory=list, description="Each changed fact, both values.")
    unchecked: list[str] = Field(default_factory=list, description="What could not be verified, and why.")
    model: str = Field(description="The model or LoRA adapter that translated.")


_WORST: tuple[Status, ...] = ("changed", "could_not_check", "preserved", "no_facts")


@tool
def translate_passage(args: TranslateArgs, ctx: ToolContext) -> TranslatedPassage:
    """Translate a passage between English, French, German, Dutch, Italian and Spanish with the bank's
    served translation model; every amount, date, percentage, number and party name is checked in the
    translation and any change is reported with both values."""
    report = translate_segments(
        segments({1: args.text}), ctx.services.gateway, ctx.recorder, source=args.source, target=args.to
    )
    statuses = {s.check.status for s in report.segments}
    return TranslatedPassage(
        translation="\n\n".join(s.translation for s in report.segments),
        status=next(s for s in _WORST if s in statuses),
        changes=[FactChange(**c.__dict__) for s in report.segments for c in s.check.changes],
        unchecked=[u for s in report.segments for u in s.check.unchecked],
        model=", ".join(dict.fromkeys(s.model for s in report.segments)),
    )
