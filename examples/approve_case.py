"""Human in the loop: an agent proposes a side-effecting tool call, the run pauses, a person decides
(from another process: here a second Runtime), and the run continues from its checkpoint."""

import sys

from sovra.agents.sdk import define_agent
from sovra.runtime import Runtime
from sovra.tools.cases import list_cases, open_case

agent = define_agent(
    "case_opener",  # not "followup": that name is the built-in agent's
    "Opens follow-up cases for payment problems.",
    tools=[open_case],  # read_only=False, needs_approval=True, requires group:finance
    system_prompt="When a payment problem is reported, call open_case, then confirm briefly.",
)


def main(question: str, user: str, approver: str, approve: bool, reason: str, settings=None) -> list[dict]:
    first = Runtime(settings, agents=lambda name: agent)
    answer = first.ask(agent, question, user)
    first.close()  # the process that asked may be gone by the time someone decides
    print(answer.status, answer.approval.description if answer.approval else "")
    if answer.approval is None:
        return []
    second = Runtime(settings, agents=lambda name: agent)
    done = second.resume(answer.run_id, approver, approved=approve, reason=reason)
    print(done.status, done.text)
    for record in second.services.audit.records(answer.run_id):
        print(record.seq, record.kind)
    cases = list_cases(second.settings)
    second.close()
    return cases


if __name__ == "__main__":  # python examples/approve_case.py bob bob "Acme was paid twice (8,500)"
    print(main(sys.argv[3], sys.argv[1], sys.argv[2], approve=True, reason="checked"))
