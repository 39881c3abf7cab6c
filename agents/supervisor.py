"""The flagship supervisor: routes a free question to the policy assistant, the contract checker,
the ledger reconciliation or the general assistant, and merges their cited answers.

Built on the SDK's ``Supervisor`` (each specialist runs as a LangGraph subgraph; answers merged with
citations renumbered). Routing is decided by deterministic keyword rules first, because a small
model routes unreliably; only a question no rule recognises goes to the ``planning`` model, whose
JSON-schema decision is constrained to the specialists' names. Either way the decision and who
made it are recorded (``supervisor.route``).
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.runnables import RunnableConfig

from sovra.agents.assistant import Assistant
from sovra.agents.contracts import ContractChecker
from sovra.agents.policy import PolicyAssistant
from sovra.agents.reconcile import Reconciler
from sovra.agents.sdk import Supervisor as _SdkSupervisor

# In priority order: the first rules that match pick the specialists (at most two).
RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "reconcile",
        re.compile(
            r"\breconcil\w*|\bdiscrepanc\w*|\bduplicate\w*|\bpaid twice\b|\bover-?pa(?:id|yments?)\b"
            r"|\b(?:exceed\w*|above|over)\b[^?.]{0,40}\bcap\b|\bcap\b[^?.]{0,40}\bexceed\w*",
            re.I,
        ),
    ),
    (
        "contracts",
        re.compile(
            r"\b(?:in)?consisten\w*|\bterm sheets?\b|\bheads of terms\b|\bprospectus\w*|\bmismatch\w*"
            r"|\bcompare\b|\bamendments?\b|\bcontradict\w*",
            re.I,
        ),
    ),
    (
        "policy",
        re.compile(
            r"\bpolic(?:y|ies)\b|\bprocedures?\b|\bcode of conduct\b|\bstatement\b|\bhandbook\b|\bguidelines?\b"
            r"|\b(?:may|can|must|should) i\b|\bam i\b|\bwork from home\b|\bremote work\b|\bgifts?\b|\bhotel\b"
            r"|\bexpenses?\b|\bholidays?\b|\bleave\b|\bdata breach\b|\bretention\b|\battest\w*|\bwhistle\w*",
            re.I,
        ),
    ),
    (
        "assistant",
        re.compile(
            r"\b(?:paid|pay|payments?|spent|booked|invoiced?)\b|\b(?:contracts?|agreements?|lease|facility|loan)\b"
            r"|\bterminat\w*\b|\bgoverning law\b|\b(?:C|TS)-\d{4}-\d{3}\b",
            re.I,
        ),
    ),
)
MAX_SPECIALISTS = 2


def route_by_rules(question: str) -> list[str]:
    """The specialists the keyword rules pick for ``question`` (empty: no rule applies). The general
    assistant is picked only when no specialist's rule matches."""
    matched = [name for name, pattern in RULES if pattern.search(question)]
    specialists = [n for n in matched if n != "assistant"]
    return (specialists or matched)[:MAX_SPECIALISTS]


class Supervisor(_SdkSupervisor):
    """Rules first, the planning model only for questions no rule recognises."""

    def __init__(self) -> None:
        super().__init__(
            name="supervisor",
            description="Routes a question to the policy, contract, reconciliation or general specialist.",
            specialists=[PolicyAssistant(), ContractChecker(), Reconciler(), Assistant()],
            route="planning",
            instructions="policy: employee rules and policies. contracts: inconsistencies between a contract "
            "and its term sheet. reconcile: payments against a contract's fee and cap. assistant: anything else.",
            max_specialists=MAX_SPECIALISTS,
        )
        self.title = "Let Sovra pick the specialist"

    def _route(self, state: Any, config: RunnableConfig) -> dict[str, Any]:
        chosen = route_by_rules(state["question"])
        if not chosen:
            return super()._route(state, config)  # the model decides, under a JSON schema
        ctx = config["configurable"]["ctx"]
        check = getattr(ctx, "check", None)
        if callable(check):
            check()
        reason = "keyword rules"
        ctx.recorder.record("supervisor.route", {"chosen": chosen, "reason": reason})
        return {"chosen": chosen, "reason": reason}
