"""The sharing rule at the faces that show a run's answer to someone other than its asker (an
approver deciding it): **an answer is shown only to people who may read every source it quotes**
(``sovra.readers``). The run's owner and auditors always see it; an approver sees it only when they
may read all its sources, otherwise its status and next pending action alone."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from sovra.identity import User
from sovra.privacy import is_auditor
from sovra.readers import SourceAccess

log = logging.getLogger(__name__)

WITHHELD = (
    "The answer went to the run's owner: it quotes sources you may not read "
    "(the owner and auditors can read it in the run's record)."
)


def source_access(runtime: Any) -> SourceAccess:
    from sovra.tools.ledger_tool import ledger_lookup

    return SourceAccess(runtime.services.index, ledger_lookup.requires)


def may_see_answer(runtime: Any, viewer: User, answer: Any) -> bool:
    """May ``viewer`` see ``answer``? Its owner and auditors may; anyone else when they may read
    every source it shows. A failed check (no index, ...) is a no."""
    if viewer.id == answer.user or is_auditor(viewer) or not (answer.citations or answer.evidence):
        return True
    try:
        return source_access(runtime).may_read_answer(viewer, answer)
    except Exception as exc:
        log.warning("checking whether %s may read run %s failed (withheld): %s", viewer.id, answer.run_id, exc)
        return False


def withheld_body(answer: Any) -> dict[str, Any]:
    """The JSON an approver gets instead of an answer they may not read: status and the next
    pending action (tool, arguments, description: what they decide on); no text, citations,
    evidence or output."""
    return {
        "run_id": answer.run_id,
        "user": answer.user,
        "status": answer.status,
        "answer": None,
        "withheld": True,
        "citations": [],
        "evidence": [],
        "notes": [WITHHELD],
        "output": None,
        "approval": asdict(answer.approval) if answer.approval is not None else None,
    }
