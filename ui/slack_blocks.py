"""Block Kit messages for the Slack bot: an answer with numbered sources and its run id, and the
approval buttons a paused run shows. Limits from Slack's docs: a section's text is at most 3000
characters, a message at most 50 blocks, a context block at most 10 elements."""

from __future__ import annotations

from typing import Any

from sovra.ui.bot_common import AnswerParts, Source

SECTION_MAX = 3000
APPROVE_ACTION = "sovra_approve"
REJECT_ACTION = "sovra_reject"


def escape(text: str) -> str:
    """Slack's three control characters in mrkdwn and plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int = SECTION_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _source_line(s: Source) -> str:
    title = escape(s.title).replace("|", "¦")
    head = f"*[{s.n}]* <{s.url}|{title}>" if s.is_link else f"*[{s.n}]* {title} (`{escape(s.url)}`)"
    if s.where:
        head += f", {escape(s.where)}"
    if s.quote:
        head += f"\n> _{escape(s.quote)}_"
    return head


def answer_blocks(parts: AnswerParts) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": _cut(escape(parts.text))}}]
    if parts.notes:
        notes = [{"type": "mrkdwn", "text": _cut(escape(n), 300)} for n in parts.notes[:10]]
        blocks.append({"type": "context", "elements": notes})
    if parts.sources:
        heading = "*Most relevant passages* (not cited by the model)" if parts.sources_are_evidence else "*Sources*"
        lines = "\n".join(_source_line(s) for s in parts.sources)
        blocks += [
            {"type": "divider"},
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(heading + "\n" + lines)}},
        ]
    if parts.approval is not None:
        blocks += approval_blocks(parts.run_id, parts.approval)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Audit run `{parts.run_id}`"}]})
    return blocks


def approval_blocks(run_id: str, approval: Any) -> list[dict[str, Any]]:
    tool = escape(str(getattr(approval, "tool", "")))
    description = escape(str(getattr(approval, "description", "")))
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(f":raised_hand: *Approval needed* for `{tool}`\n{description}")},
        },
        {
            "type": "actions",
            "block_id": "sovra_approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": run_id,
                },
                {
                    "type": "button",
                    "action_id": REJECT_ACTION,
                    "text": {"type": "plain_text", "text": "Reject"},
                    "style": "danger",
                    "value": run_id,
                },
            ],
        },
    ]


def fallback_text(parts: AnswerParts) -> str:
    """The notification and screen-reader text of a message with blocks."""
    return _cut(parts.text, 300)


def decided_blocks(original: list[dict[str, Any]], approver_slack_id: str, approved: bool) -> list[dict[str, Any]]:
    """The original message with its buttons replaced by who decided what."""
    verdict = "Approved" if approved else "Rejected"
    kept = [b for b in original if b.get("type") != "actions"]
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{verdict} by <@{approver_slack_id}>"}]}
    return [*kept, note]
