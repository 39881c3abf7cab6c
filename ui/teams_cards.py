"""Adaptive Cards for the Teams bot: an answer with numbered sources and its run id, and the
Approve/Reject actions of a paused run (``Action.Execute``, Teams' Universal Actions, with an
``Action.Submit`` fallback for clients without them)."""

from __future__ import annotations

from typing import Any

from sovra.ui.bot_common import AnswerParts, Source

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
TEXT_MAX = 10_000  # well inside Teams' ~28 KB message limit for one card
ACTION_KEY = "sovra_action"


def _cut(text: str, limit: int = TEXT_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _md(text: str) -> str:
    """Text for a TextBlock: Adaptive Card markdown reads [..](..) as a link; only our own links may be."""
    return text.replace("](", "] (")


def _link_text(text: str) -> str:
    return text.replace("[", "(").replace("]", ")")


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _source(s: Source) -> list[dict[str, Any]]:
    title = _link_text(s.title)
    head = f"**[{s.n}]** [{title}]({s.url})" if s.is_link else f"**[{s.n}]** {_md(s.title)} ({s.url})"
    if s.where:
        head += f", {s.where}"
    blocks = [_text(head, spacing="Small")]
    if s.quote:
        blocks.append(_text(f"_{_md(s.quote)}_", isSubtle=True, size="Small", spacing="None"))
    return blocks


def card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if actions:
        c["actions"] = actions
    return c


def answer_card(parts: AnswerParts) -> dict[str, Any]:
    body = [_text(_cut(_md(parts.text)))]
    body += [_text(n, isSubtle=True, size="Small") for n in parts.notes[:10]]
    if parts.sources:
        heading = "Most relevant passages (not cited by the model)" if parts.sources_are_evidence else "Sources"
        body.append(_text(heading, weight="Bolder", separator=True))
        for s in parts.sources:
            body += _source(s)
    actions = None
    if parts.approval is not None:
        body += approval_body(parts.approval)
        actions = approval_actions(parts.run_id)
    body.append(_text(f"Audit run {parts.run_id}", isSubtle=True, size="Small", separator=True))
    return card(body, actions)


def approval_body(approval: Any) -> list[dict[str, Any]]:
    return [
        _text(f"Approval needed for {approval.tool}", weight="Bolder", separator=True),
        _text(_cut(str(approval.description), 2000)),
        {"type": "Input.Text", "id": "reason", "placeholder": "Reason (required to reject)", "maxLength": 500},
    ]


def approval_actions(run_id: str) -> list[dict[str, Any]]:
    def action(verb: str, title: str, style: str) -> dict[str, Any]:
        data = {ACTION_KEY: verb, "run_id": run_id}
        return {
            "type": "Action.Execute",
            "verb": verb,
            "title": title,
            "style": style,
            "data": data,
            "fallback": {"type": "Action.Submit", "title": title, "data": data},
        }

    return [action("approve", "Approve", "positive"), action("reject", "Reject", "destructive")]


def notice_card(text: str, run_id: str | None = None) -> dict[str, Any]:
    body = [_text(text)]
    if run_id:
        body.append(_text(f"Audit run {run_id}", isSubtle=True, size="Small"))
    return card(body)
