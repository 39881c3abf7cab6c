"""The flagship supervisor: keyword routing, specialists as LangGraph subgraphs, merged cited answers."""

from __future__ import annotations

import re

import pytest

from sovra.agents import get_agent, list_agents
from sovra.agents.supervisor import route_by_rules


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Did our 2025 payments to Blauwal exceed the contract's annual cap?", ["reconcile"]),
        ("Reconcile the Acme contract with the ledger", ["reconcile"]),
        ("Was any Acme invoice paid twice?", ["reconcile"]),
        ("Is the Keizersgracht lease consistent with its heads of terms?", ["contracts"]),
        ("Compare the Rheintal term sheet with the signed facility", ["contracts"]),
        ("May I accept a gift worth EUR 120?", ["policy"]),
        ("How many days per week can I work from home?", ["policy"]),
        ("What is the CET1 floor in the risk appetite statement?", ["policy"]),
        ("Can we terminate the Acme Office Supplies contract early?", ["assistant"]),
        ("How much have we paid Acme in 2026?", ["assistant"]),
        ("Which gifts policy applies, and were there duplicate payments to Acme?", ["reconcile", "policy"]),
        ("Tell me a joke", []),
    ],
)
def test_keyword_rules_route_questions(question, expected):
    assert route_by_rules(question) == expected


def test_the_flagship_agents_are_registered():
    names = dict(list_agents())
    for name in ("policy", "contracts", "reconcile", "supervisor"):
        assert names.get(name)


def test_the_supervisor_is_a_real_langgraph_graph_with_the_specialists_as_nodes():
    graph = get_agent("supervisor").graph()
    assert {"route", "policy", "contracts", "reconcile", "assistant", "merge"} <= set(graph.nodes)
    compiled = graph.compile()
    assert "merge" in compiled.get_graph().nodes


def test_a_reconciliation_question_goes_to_the_reconciler(demo_runtime):
    a = demo_runtime.ask(get_agent("supervisor"), "Reconcile the Acme Office Supplies contract with the ledger", "bob")
    assert a.status == "answered" and "Duplicate payment" in a.text
    assert any(c.kind == "ledger" for c in a.citations)
    records = demo_runtime.services.audit.records(a.run_id)
    route = next(r for r in records if r.kind == "supervisor.route")
    assert route.data == {"chosen": ["reconcile"], "reason": "keyword rules"}


def test_two_specialists_answers_are_merged_with_citations_renumbered(demo_runtime):
    a = demo_runtime.ask(
        get_agent("supervisor"),
        "Is the Keizersgracht 480 lease consistent with its heads of terms, and what does the gifts policy say "
        "about a gift worth EUR 120?",
        "dave",
    )
    assert "Governing law" in a.text and "line manager" in a.text
    numbers = [c.n for c in a.citations]
    assert numbers == list(range(1, len(numbers) + 1))  # one numbering across both specialists
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", a.text)}
    assert cited <= set(numbers)
    assert any("Heads of Terms" in c.title for c in a.citations)
    assert any("Gifts" in c.title for c in a.citations)


def test_a_restricted_question_routed_to_policy_does_not_leak(demo_runtime):
    a = demo_runtime.ask(get_agent("supervisor"), "What is the CET1 floor in the risk appetite statement?", "alice")
    assert "13.2%" not in a.text and a.status == "not_found"


@pytest.mark.llm
def test_a_question_no_rule_recognises_is_routed_by_the_planning_model(demo_runtime):
    a = demo_runtime.ask(get_agent("supervisor"), "Tell me about Helix Cloud Hosting", "bob")
    records = demo_runtime.services.audit.records(a.run_id)
    route = next(r for r in records if r.kind == "supervisor.route")
    assert route.data["reason"] != "keyword rules"
    assert set(route.data["chosen"]) <= {"policy", "contracts", "reconcile", "assistant"}
    assert any(r.kind == "model.call" for r in records)


def test_each_flagship_agent_has_an_eval_suite():
    from sovra.agents import AGENTS
    from sovra.evals.suites import AGENT_SUITES, suite_items

    for suite in AGENT_SUITES:
        items, path = suite_items(suite)
        assert path.name == f"{suite}.jsonl" and len(items) >= 10
        assert {i.agent for i in items} == {suite} and suite in AGENTS
        assert any(i.expects_refusal for i in items) and any(i.must_contain for i in items)
