"""followup: a small SDK agent that opens follow-up cases for the finance team (after approval).

It shows the SDK in a registered agent, so ``sovra ask --agent followup`` and ``sovra approve`` work
from the command line: the model proposes ``open_case``, the run pauses, a person decides.
"""

from __future__ import annotations

from sovra.agents.sdk import SdkAgent, define_agent
from sovra.tools.cases import open_case

SYSTEM = (
    "You help the finance team follow up payment problems. When the user reports a problem with a "
    "payment to a counterparty, call open_case with the counterparty, a one-sentence summary and the "
    "amount. Then confirm briefly what was done."
)


def followup() -> SdkAgent:
    return define_agent(
        "followup",
        "Opens follow-up cases for payment problems (each case needs a person's approval).",
        tools=[open_case],
        system_prompt=SYSTEM,
        route="chat",
        max_steps=3,
    )
