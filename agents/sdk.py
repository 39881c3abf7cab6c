"""Build agents in a few lines: tools + system prompt + model route + output schema -> a LangGraph graph.

::

    from sovra.agents.sdk import define_agent
    from sovra.tools.cases import open_case

    followup = define_agent(
        "followup", "Opens follow-up cases for payment problems.",
        tools=[open_case], system_prompt="You open follow-up cases for the finance team.",
    )
    runtime.ask(followup, "Open a case: Acme was paid twice in March (8,500 EUR)", "bob")

``agent.graph()`` is a real ``StateGraph`` (nodes ``agent`` -> ``tools`` -> ``agent`` ... -> ``respond``)
that you can inspect, extend with LangGraph's own API, or compile and run yourself (put a
``sovra.runtime.RunContext`` in ``config["configurable"]["ctx"]``).

How the model picks tools depends on the route's server: ``tool_mode="native"`` uses the server's
tool calling (vLLM with a tool-call parser); ``"json"`` asks for one JSON object constrained by a
schema that is the union of ``{"tool": NAME, "args": {...}}`` per tool and ``{"tool": "final_answer"}``,
which even the bundled 135M model follows under llama.cpp's grammar; ``"auto"`` (default) picks
native for a served model and json for the local one. The final answer is written by the model
(streamed token by token), or, with ``output=Model``, returned as that validated model
(``Answer.output``). Invalid JSON is retried once with the validation error, then fails with
``ModelOutputError``.

Every tool call goes through ``sovra.tools.base.run_tool``: permissions, approval (a LangGraph
interrupt) for side-effecting tools, and a ``tool.<name>`` audit step.
"""

from __future__ import annotations

import json
import operator
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field, create_model

from sovra.agents.grounding import check_citations, extract
from sovra.errors import DefinitionError, ModelOutputError
from sovra.runtime import Answer, Citation, RunContext
from sovra.tools.base import Tool, ToolOutcome, approval_request, run_tool

FINAL = "final_answer"
_RESULT_CHARS = 600  # of each tool result kept in the state for the answer's notes
_MAX_ARG_CHARS = 240  # of a string argument in a JSON-mode decision
_HISTORY_MESSAGES = 24  # earlier turns of a thread the model sees (most recent)


class AgentState(TypedDict, total=False):
    question: str
    messages: Annotated[list[dict[str, Any]], operator.add]  # the conversation, all turns of a thread
    pending: list[dict[str, Any]]  # tool calls the model just asked for: {"id", "name", "arguments"}
    rounds: int  # model -> tools rounds in this turn
    citations: list[dict[str, Any]]
    draft: str | None  # an answer the model wrote while deciding (native tool mode)
    answer: str
    output: dict[str, Any] | None
    status: str
    notes: list[str]
    calls: list[str]  # the tool calls of this turn, as "name(arguments)": a repeat means the model is stuck
    results: list[dict[str, Any]]  # what each tool call of this turn returned (see _act)
    stopped: str | None  # why the runtime stopped asking the model for tool calls, if it did
    evidence: list[dict[str, Any]]  # citations the tools made that the answer does not rest on


NOT_FOUND = "I could not find this with the tools and documents you can access."
# Of the next model call, the prompt is estimated at this many characters per token (a small model's
# tokenizer gives about 4; being pessimistic stops a little early rather than past the budget).
_CHARS_PER_TOKEN = 3


def _ctx(config: RunnableConfig) -> RunContext:
    ctx: RunContext = config["configurable"]["ctx"]
    return ctx


@dataclass
class SdkAgent:
    """An agent made by ``define_agent``; satisfies ``sovra.runtime.Agent``."""

    name: str
    description: str
    tools: list[Tool[Any, Any]] = field(default_factory=list)
    system_prompt: str = "You are a careful assistant at a bank."
    route: str = "chat"
    output: type[BaseModel] | None = None
    max_steps: int = 8  # model -> tools rounds per question
    tool_mode: Literal["auto", "native", "json"] = "auto"
    needs_index: bool = False
    grounded: bool = True  # an answer must rest on what the tools returned (see _respond)

    def __post_init__(self) -> None:
        _check_definition(self)
        self._by_name = {t.name: t for t in self.tools}

    def identity(self) -> str:
        """What makes a paused run of this agent resumable by another instance: its name and tools."""
        return f"sdk:{self.name}:{','.join(sorted(self._by_name))}"

    # -- the runtime's Agent protocol ------------------------------------------------------

    def initial_state(self, question: str) -> dict[str, Any]:
        # A new turn: earlier messages stay (the reducer appends), per-turn fields start empty.
        return {
            "question": question,
            "messages": [{"role": "user", "content": question}],
            "pending": [],
            "rounds": 0,
            "draft": None,
            "citations": [],
            "answer": "",
            "output": None,
            "status": "",
            "notes": [],
            "calls": [],
            "results": [],
            "stopped": None,
            "evidence": [],
        }

    def graph(self) -> StateGraph:
        g = StateGraph(AgentState)
        g.add_node("agent", self._decide)
        g.add_node("tools", self._act)
        g.add_node("respond", self._respond)
        g.add_edge(START, "agent")
        g.add_conditional_edges("agent", lambda s: "tools" if s.get("pending") else "respond", ["tools", "respond"])
        g.add_edge("tools", "agent")
        g.add_edge("respond", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        base.text = state.get("answer", "")
        base.status = state.get("status") or "answered"
        base.citations = [Citation(**{**c, "rows": tuple(c.get("rows", ()))}) for c in state.get("citations", [])]
        base.notes = list(state.get("notes", []))
        base.output = state.get("output")
        base.evidence = [Citation(**{**c, "rows": tuple(c.get("rows", ()))}) for c in state.get("evidence", [])]
        return base

    # -- nodes -------------------------------------------------------------------------------

    def _mode(self, ctx: RunContext) -> str:
        if self.tool_mode != "auto":
            return self.tool_mode
        return "json" if ctx.services.gateway.routes.route(self.route)[1].is_local else "native"

    def _conversation(self, state: AgentState, extra: str = "") -> list[dict[str, Any]]:
        system = self.system_prompt.strip()
        if self.tools:
            listing = "\n".join(f"- {t.name}: {t.description.splitlines()[0]}" for t in self.tools)
            system += f"\n\nTools you may call:\n{listing}"
        if extra:
            system += "\n\n" + extra
        return [{"role": "system", "content": system}, *state.get("messages", [])[-_HISTORY_MESSAGES:]]

    def _decide(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        ctx = _ctx(config)
        ctx.check()
        if not self.tools:
            return {"pending": [], "draft": None}
        rounds = state.get("rounds", 0)
        if rounds >= self.max_steps:
            return self._stop(ctx, rounds, f"it called tools {rounds} times without finishing (max_steps)")
        if rounds and self._budget_short(ctx, state):
            return self._stop(ctx, rounds, "the run's token or time budget would run out before it finished")
        gw = ctx.services.gateway
        seen = list(state.get("calls", []))
        if self._mode(ctx) == "native":
            convo = self._conversation(state)
            calls, mc = gw.complete_tools(convo, [t.schema() for t in self.tools], route=self.route)
            ctx.model_call(mc, convo)
            asked = [
                {"id": c.id or f"call-{rounds}-{i}", "name": c.name, "arguments": c.arguments}
                for i, c in enumerate(calls)
            ]
            if not asked:
                # The model answered instead of calling a tool: that text is the answer (no second call).
                return {"pending": [], "draft": mc.output}
            pending = [p for p in asked if _signature(p) not in seen]
            if not pending:
                return self._stop(ctx, rounds, f"it asked again for {_signature(asked[0])}")
            msg = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": p["id"],
                        "type": "function",
                        "function": {"name": p["name"], "arguments": json.dumps(p["arguments"])},
                    }
                    for p in pending
                ],
            }
            return {
                "pending": pending,
                "messages": [msg],
                "rounds": rounds + 1,
                "calls": seen + [_signature(p) for p in pending],
            }
        # Nothing gathered yet: the first decision must call a tool. An answer without one is
        # not_found anyway (safe by default), and a small model under the grammar would otherwise
        # often "answer" from nothing instead of looking (seen with the bundled model).
        first = not rounds and not seen
        convo = self._conversation(
            state,
            'Reply with one JSON object: {"tool": NAME, "args": {...}} to call a tool'
            + ("." if first else f', or {{"tool": "{FINAL}"}} when you have what you need to answer.'),
        )
        try:
            decision, mc = gw.complete_json(convo, self._decision_model(finish=not first), route=self.route)
        except ModelOutputError as exc:
            if not rounds:
                raise  # nothing gathered yet: the run fails with the model's error
            return self._stop(ctx, rounds, f"its decision was not valid JSON ({exc.message[:160]})")
        ctx.model_call(mc, convo)
        choice = decision.root if hasattr(decision, "root") else decision
        name = getattr(choice, "tool", FINAL)
        if name == FINAL:
            return {"pending": [], "draft": None}
        args = choice.args
        call = {"id": f"call-{rounds}", "name": name, "arguments": args.model_dump(mode="json")}
        if _signature(call) in seen:
            return self._stop(ctx, rounds, f"it asked again for {_signature(call)}")
        msg = {"role": "assistant", "content": json.dumps({"tool": name, "args": call["arguments"]})}
        return {"pending": [call], "messages": [msg], "rounds": rounds + 1, "calls": [*seen, _signature(call)]}

    def _stop(self, ctx: RunContext, rounds: int, reason: str) -> dict[str, Any]:
        """Stop asking the model for tool calls; the answer is made from what the tools returned."""
        ctx.recorder.record("agent.stopped", {"agent": self.name, "rounds": rounds, "reason": reason})
        return {"pending": [], "draft": None, "stopped": f"the model did not finish: {reason}"}

    def _budget_short(self, ctx: RunContext, state: AgentState) -> bool:
        """Whether the next decision would likely take the run past its token or time budget (which
        would end it with no answer at all, though the tools may already have found one)."""
        b = ctx.budget
        prompt_chars = sum(len(str(m.get("content") or "")) for m in self._conversation(state))
        settings = getattr(ctx.services, "settings", None)
        reply = int(getattr(settings, "llm_max_tokens", 384))
        if ctx.tokens + prompt_chars // _CHARS_PER_TOKEN + reply > b.max_tokens:
            return True
        return time.monotonic() - ctx.started > 0.8 * b.max_seconds

    def _decision_model(self, finish: bool = True) -> type[BaseModel]:
        """One decision: a call of one of the tools, or the end. Without ``finish`` the schema sent to
        the model (which a grammar enforces) offers the tool calls only; what is parsed back still
        admits the end, so a model that ignores the schema ends the run as before."""
        options: list[Any] = [
            create_model(f"Call_{t.name}", tool=(Literal[t.name], ...), args=(t.args_model, ...))  # type: ignore[valid-type]
            for t in self.tools
        ]
        options.append(create_model("Finish", tool=(Literal[FINAL], ...)))  # type: ignore[valid-type]
        from pydantic import RootModel

        union: Any = options[0]
        for o in options[1:]:
            union = union | o
        base: Any = RootModel[union]  # type: ignore[valid-type]

        def schema(cls: Any, *args: Any, **kw: Any) -> dict[str, Any]:
            out = _cap_strings(base.model_json_schema.__func__(cls, *args, **kw))
            if not finish:  # keep the anyOf (a lone top-level $ref is not understood by every server)
                out["anyOf"] = [o for o in out["anyOf"] if o.get("$ref") != "#/$defs/Finish"]
                out["$defs"].pop("Finish", None)
            return out

        # A small model under a grammar may write a string argument until max_tokens cuts the JSON
        # off; a length limit in the schema (which llama.cpp's grammar enforces) lets it close it.
        decision: type[BaseModel] = type(
            "ToolDecision", (base,), {"model_json_schema": classmethod(schema), "__module__": __name__}
        )
        return decision

    def _act(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        ctx = _ctx(config)
        pending = state.get("pending", [])
        citations = list(state.get("citations", []))
        # Every approval is asked for BEFORE any tool runs: the node starts over after each resume,
        # and nothing may have happened twice by then.
        decisions: dict[str, dict[str, Any]] = {}
        for call in pending:
            t = self._by_name.get(call["name"])
            if t is None or not t.needs_approval or not t.allowed(ctx.user):
                continue
            try:
                parsed = t.args_model.model_validate(call["arguments"])
            except ValueError:
                continue  # run_tool records the invalid arguments
            from langgraph.types import interrupt

            decisions[call["id"]] = interrupt(approval_request(t, parsed, ctx.user, call["id"]))
        messages: list[dict[str, Any]] = []
        results = list(state.get("results", []))
        native = self._mode(ctx) == "native"
        for call in pending:
            t = self._by_name.get(call["name"])
            if t is None:
                outcome = ToolOutcome(call["name"], call["id"], "invalid", message=f"there is no tool {call['name']!r}")
                ctx.recorder.record("tool.unknown", {"tool": call["name"], "args": call["arguments"]})
            else:
                ctx.cite_offset = len(citations)
                outcome = run_tool(t, call["arguments"], ctx, call_id=call["id"], decision=decisions.get(call["id"]))
                citations += outcome.citations
            results.append(
                {
                    "tool": call["name"],
                    "call": _signature(call),
                    "status": outcome.status,
                    "read_only": t.read_only if t is not None else True,
                    "text": outcome.for_model()[:_RESULT_CHARS],
                    "cites": [c["n"] for c in outcome.citations],
                }
            )
            if native:
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": outcome.for_model()})
            else:
                messages.append({"role": "user", "content": f"Result of {call['name']}: {outcome.for_model()}"})
        return {"pending": [], "messages": messages, "citations": citations, "results": results}

    def _respond(self, state: AgentState, config: RunnableConfig) -> dict[str, Any]:
        """The answer, resting only on what the tools returned (unless ``grounded=False``):

        - the agent has tools but none returned anything: ``not_found`` (no model-written text);
        - the bundled model (``SOVRA_ANSWER_MODE`` extractive) or a model that stopped making progress:
          the sentences of the cited passages that answer the question, quoted with their citation
          numbers (``extracted``), else ``not_found``;
        - a served model writes the answer; ``[n]`` that point at no citation are removed (and
          recorded); an answer citing none of the sources the tools cited is ``uncited``.
        """
        ctx = _ctx(config)
        ctx.check()
        cites = state.get("citations", [])
        results = state.get("results", [])
        stopped = state.get("stopped")
        notes = [f"{stopped[:1].upper()}{stopped[1:]}; the answer quotes what the tools returned."] if stopped else []
        ok = [r for r in results if r["status"] == "ok"]
        if self.grounded and self.tools and not ok:
            return self._not_found(ctx, results, notes)
        if self.output is not None:
            return self._structured(ctx, state, cites, ok, notes)
        if self.grounded and (stopped or ctx.services.settings.resolved_answer_mode == "extractive"):
            return self._extracted(ctx, state, cites, ok, notes)
        gw = ctx.services.gateway
        hint = " Cite sources by their number in square brackets, like [1]." if cites else ""
        draft = (state.get("draft") or "").strip()
        if draft:
            ctx.emit_token(draft)
            text = draft
        else:
            convo = self._conversation(state, "Now answer the user's question briefly and factually." + hint)
            stream = gw.stream_text(convo, route=self.route)
            pieces: list[str] = []
            for piece in stream:
                pieces.append(piece)
                ctx.emit_token(piece)
            if stream.call is not None:
                ctx.model_call(stream.call, convo)
            text = "".join(pieces).strip()
        text, valid, dangling = check_citations(text, cites)
        if cites or dangling:
            ctx.recorder.record("citations.check", {"valid": valid, "removed": dangling, "citations": len(cites)})
        kept = [c for c in cites if c["n"] in valid]
        # Cited; or not meant to be grounded; or the answer reports a change a tool made.
        status = "answered" if kept or not self.grounded or _acted(ok) else "uncited"
        return {
            "answer": text,
            "citations": kept,
            "evidence": [] if kept else cites,
            "status": status,
            "notes": notes,
            "messages": [{"role": "assistant", "content": text}],
        }

    def _not_found(self, ctx: RunContext, results: list[dict[str, Any]], notes: list[str]) -> dict[str, Any]:
        # Written from the outcomes, not by the model: what was denied, refused or failed is a fact.
        if results:
            reason = "no tool call succeeded: " + "; ".join(f"{r['tool']}: {r['text']}" for r in results[-3:])
            text = f"No answer: {reason}."
        else:
            reason = "the model answered without calling a tool, so nothing supports an answer"
            text = NOT_FOUND
        ctx.recorder.record("answer.not_found", {"agent": self.name, "reason": reason[:1000]})
        ctx.emit_token(text)
        return {
            "answer": text,
            "citations": [],
            "status": "not_found",
            "notes": notes if results else [*notes, reason],
            "output": None,
            "messages": [{"role": "assistant", "content": text}],
        }

    def _extracted(
        self,
        ctx: RunContext,
        state: AgentState,
        cites: list[dict[str, Any]],
        ok: list[dict[str, Any]],
        notes: list[str],
    ) -> dict[str, Any]:
        settings = ctx.services.settings
        found = extract(state["question"], cites, ctx.services.embedder, settings.min_evidence_score) if cites else None
        ctx.recorder.record(
            "answer.extractive",
            {
                "agent": self.name,
                "cited": found.cited if found else [],
                "considered": found.considered if found else 0,
                "named": found.named if found else [],
                "min_score": settings.min_evidence_score,
                "stopped": state.get("stopped"),
            },
        )
        if found is not None and found.cited:
            text, status = found.text, "extracted"
            kept = [c for c in cites if c["n"] in found.cited]
        elif cites or not _acted(ok):
            # Cited passages that do not answer, or results nobody can check: nothing to quote.
            if not cites:
                notes = [*notes, "The tools returned results without sources: " + _results_line(ok)]
            ctx.recorder.record("answer.not_found", {"agent": self.name, "reason": "no returned passage answers"})
            text, status, kept = NOT_FOUND, "not_found", []
        else:
            text, status, kept = "Done: " + _results_line([r for r in ok if not r["read_only"]]), "answered", []
        ctx.emit_token(text)
        return {
            "answer": text,
            "citations": kept,
            "evidence": [],
            "status": status,
            "notes": notes,
            "messages": [{"role": "assistant", "content": text}],
        }

    def _structured(
        self,
        ctx: RunContext,
        state: AgentState,
        cites: list[dict[str, Any]],
        ok: list[dict[str, Any]],
        notes: list[str],
    ) -> dict[str, Any]:
        assert self.output is not None
        hint = " Cite sources by their number in square brackets, like [1]." if cites else ""
        convo = self._conversation(state, "Now give the final result as one JSON object." + hint)
        value, mc = ctx.services.gateway.complete_json(convo, self.output, route=self.route)
        ctx.model_call(mc, convo)
        data = value.model_dump(mode="json")
        text = json.dumps(data, ensure_ascii=False)
        supported = bool(cites) or _acted(ok) or not self.grounded
        return {
            "answer": text,
            "output": data,
            "citations": cites,
            "status": "answered" if supported else "uncited",
            "notes": notes,
            "messages": [{"role": "assistant", "content": text}],
        }


def _cap_strings(schema: Any) -> Any:
    """``schema`` with a maxLength on every free string (see ``_decision_model``)."""
    if isinstance(schema, dict):
        out = {k: _cap_strings(v) for k, v in schema.items()}
        if out.get("type") == "string" and not ({"maxLength", "enum", "const", "format", "pattern"} & set(out)):
            out["maxLength"] = _MAX_ARG_CHARS
        return out
    if isinstance(schema, list):
        return [_cap_strings(v) for v in schema]
    return schema


def _signature(call: dict[str, Any]) -> str:
    return f"{call['name']}({json.dumps(call.get('arguments') or {}, sort_keys=True, ensure_ascii=False)})"


def _acted(ok: list[dict[str, Any]]) -> bool:
    """Whether a side-effecting tool call succeeded: an answer reporting it rests on that result."""
    return any(not r["read_only"] for r in ok)


def _results_line(results: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['call']} -> {r['text'][:200]}" for r in results[-3:])


def _check_definition(agent: SdkAgent) -> None:
    """Refuse at definition time what would otherwise fail (or mislead) at run time."""
    from sovra.agents import AGENTS

    name = agent.name
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,63}", name):
        raise DefinitionError(f"agent name {name!r} is not valid", hint="letters, digits, _ . -; at most 64")
    if name in AGENTS and _caller_module() != AGENTS[name].split(":")[0]:
        raise DefinitionError(
            f"agent {name!r}: the name is taken by a built-in agent",
            hint="choose another name: a paused run is resumed by its agent's name",
        )
    for i, t in enumerate(agent.tools):
        if not isinstance(t, Tool):
            what = getattr(t, "__name__", None) or type(t).__name__
            raise DefinitionError(
                f"agent {name}: tools[{i}] ({what}) is not a tool",
                hint="decorate the function with @tool (from sovra.tools.base import tool)",
            )
    names = [t.name for t in agent.tools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DefinitionError(f"agent {name}: two tools are named {dupes[0]!r}", hint="use @tool(name=...) on one")
    if FINAL in names:
        raise DefinitionError(f"agent {name}: a tool may not be named {FINAL!r}", hint="use @tool(name=...)")
    if agent.max_steps < 1:
        raise DefinitionError(f"agent {name}: max_steps must be at least 1")
    if agent.output is not None and not (isinstance(agent.output, type) and issubclass(agent.output, BaseModel)):
        raise DefinitionError(f"agent {name}: output must be a pydantic model class, got {agent.output!r}")


def _caller_module() -> str:
    """The module that called define_agent (or built an SdkAgent) directly."""
    frame: Any = sys._getframe(1)
    while frame is not None and (
        frame.f_globals.get("__name__") in (__name__, "dataclasses") or frame.f_code.co_filename == "<string>"
    ):
        frame = frame.f_back
    return str(frame.f_globals.get("__name__", "")) if frame is not None else ""


def define_agent(
    name: str,
    description: str,
    *,
    tools: Sequence[Tool[Any, Any] | str] = (),
    system_prompt: str = "You are a careful assistant at a bank.",
    route: str = "chat",
    output: type[BaseModel] | None = None,
    max_steps: int = 8,
    tool_mode: Literal["auto", "native", "json"] = "auto",
    needs_index: bool = False,
    grounded: bool = True,
) -> SdkAgent:
    """An agent from tools, a system prompt, a model route and an optional output schema.

    ``max_steps`` caps model -> tools rounds per question (the run's own budget caps graph steps,
    tokens and time); past it, or when the model asks for the same call twice, the runtime stops
    asking and answers from what the tools already returned. ``needs_index=True`` makes the runtime
    check the search index before the run. ``grounded=False`` accepts answers that rest on no tool
    result (a chat agent; by default such an answer is ``not_found`` or ``uncited``).

    A string in ``tools`` names a registered tool (``sovra.tools.registry``: built-in, published
    under the ``sovra.tools`` entry point, or in the ``[tools]`` settings table).

    Mistakes raise ``DefinitionError`` here: a plain function in ``tools``, two tools with one
    name, the name of a built-in agent.
    """
    if any(isinstance(t, str) for t in tools):
        from sovra.tools.registry import get_tool

        tools = [get_tool(t) if isinstance(t, str) else t for t in tools]
    return SdkAgent(
        name=name,
        description=description,
        tools=list(tools),  # type: ignore[arg-type]
        system_prompt=system_prompt,
        route=route,
        output=output,
        max_steps=max_steps,
        tool_mode=tool_mode,
        needs_index=needs_index,
        grounded=grounded,
    )


# ---------------------------------------------------------------------- supervisor


class _SupervisorState(TypedDict, total=False):
    question: str
    chosen: list[str]
    reason: str
    results: Annotated[list[dict[str, Any]], operator.add]
    merged: dict[str, Any]


@dataclass
class Supervisor:
    """Routes a question to one or more specialists (each run as a LangGraph subgraph) and merges
    their cited answers, renumbering citations. Made by ``supervisor(...)``."""

    name: str
    description: str
    specialists: list[Any]  # sovra.runtime.Agent
    route: str = "planning"
    instructions: str = ""
    max_specialists: int = 2
    choose: Callable[[str], list[str]] | None = None
    needs_index: bool = True

    def __post_init__(self) -> None:
        self._by_name = {s.name: s for s in self.specialists}
        if len(self._by_name) != len(self.specialists) or not self.specialists:
            raise ValueError("a supervisor needs specialists with distinct names")

    def initial_state(self, question: str) -> dict[str, Any]:
        return {"question": question, "chosen": [], "reason": "", "results": [], "merged": {}}

    def graph(self) -> StateGraph:
        g = StateGraph(_SupervisorState)
        g.add_node("route", self._route)
        for spec in self.specialists:
            g.add_node(spec.name, self._specialist_node(spec))
            g.add_edge(spec.name, "merge")
        g.add_node("merge", self._merge)
        g.add_edge(START, "route")
        g.add_conditional_edges("route", lambda s: s["chosen"], [s.name for s in self.specialists])
        g.add_edge("merge", END)
        return g

    def to_answer(self, state: dict[str, Any], base: Answer) -> Answer:
        m = state.get("merged") or {}
        base.text = m.get("text", "")
        base.status = m.get("status", "not_found")
        base.citations = [Citation(**{**c, "rows": tuple(c.get("rows", ()))}) for c in m.get("citations", [])]
        base.evidence = [Citation(**{**c, "rows": tuple(c.get("rows", ()))}) for c in m.get("evidence", [])]
        base.notes = list(m.get("notes", []))
        base.output = m.get("output")
        return base

    def _route(self, state: _SupervisorState, config: RunnableConfig) -> dict[str, Any]:
        ctx = _ctx(config)
        ctx.check()
        names = [s.name for s in self.specialists]
        if self.choose is not None:
            chosen, reason = [n for n in self.choose(state["question"]) if n in names], "rule"
        else:
            listing = "\n".join(f"- {s.name}: {s.description}" for s in self.specialists)
            decision_model = create_model(
                "RouteDecision",
                specialists=(list[Literal[tuple(names)]], Field(min_length=1, max_length=self.max_specialists)),  # type: ignore[valid-type]
                reason=(str, Field(default="", max_length=120)),
            )
            messages = [
                {
                    "role": "system",
                    "content": "Pick the specialist(s) that can answer the question. Reply with JSON only.\n"
                    f"Specialists:\n{listing}\n{self.instructions}".strip(),
                },
                {"role": "user", "content": state["question"]},
            ]
            decision, mc = ctx.services.gateway.complete_json(messages, decision_model, route=self.route)
            ctx.model_call(mc, messages)
            chosen, reason = list(dict.fromkeys(decision.specialists)), decision.reason  # type: ignore[attr-defined]
        chosen = chosen[: self.max_specialists] or [names[0]]
        ctx.recorder.record("supervisor.route", {"chosen": chosen, "reason": reason})
        return {"chosen": chosen, "reason": reason}

    def _specialist_node(self, spec: Any) -> Callable[[_SupervisorState, RunnableConfig], dict[str, Any]]:
        sub = spec.graph().compile()  # gets the parent's checkpointer: its interrupts pause the whole run

        def run(state: _SupervisorState, config: RunnableConfig) -> dict[str, Any]:
            ctx = _ctx(config)
            init = getattr(spec, "initial_state", None)
            inp = init(state["question"]) if callable(init) else {"question": state["question"]}
            out = sub.invoke(inp, config)
            base = Answer(
                run_id=ctx.run_id, trace_id="", user=ctx.user.id, question=state["question"], text="", status=""
            )
            ans = spec.to_answer(dict(out), base)
            return {"results": [{"name": spec.name, "answer": _answer_dict(ans)}]}

        run.__name__ = spec.name
        return run

    def _merge(self, state: _SupervisorState, config: RunnableConfig) -> dict[str, Any]:
        order = {n: i for i, n in enumerate(state.get("chosen", []))}
        results = sorted(state.get("results", []), key=lambda r: order.get(r["name"], 99))
        if len(results) == 1:
            return {"merged": results[0]["answer"]}
        parts, cites, evidence, notes = [], [], [], []
        for r in results:
            a = r["answer"]
            offset = len(cites)
            text = _renumber(a["text"], offset)
            spec = self._by_name[r["name"]]
            parts.append(f"{spec.description}\n{text}")
            cites += [{**c, "n": c["n"] + offset} for c in a["citations"]]
            evidence += a["evidence"]
            notes += a["notes"]
        statuses = [r["answer"]["status"] for r in results]
        good = [s for s in statuses if s in ("answered", "extracted")]
        merged = {
            "text": "\n\n".join(parts),
            "status": good[0] if good else statuses[0],
            "citations": cites,
            "evidence": evidence,
            "notes": notes,
            "output": {r["name"]: r["answer"].get("output") for r in results},
        }
        return {"merged": merged}


def _renumber(text: str, offset: int) -> str:
    return re.sub(r"\[(\d{1,3})\]", lambda m: f"[{int(m.group(1)) + offset}]", text)


def _answer_dict(a: Answer) -> dict[str, Any]:
    def cite(c: Citation) -> dict[str, Any]:
        return {**c.__dict__, "rows": list(c.rows)}

    return {
        "text": a.text,
        "status": a.status,
        "citations": [cite(c) for c in a.citations],
        "evidence": [cite(c) for c in a.evidence],
        "notes": list(a.notes),
        "output": a.output,
    }


def supervisor(
    name: str,
    specialists: Sequence[Any],
    *,
    description: str = "",
    route: str = "planning",
    instructions: str = "",
    max_specialists: int = 2,
    choose: Callable[[str], list[str]] | None = None,
) -> Supervisor:
    """A supervisor agent over ``specialists`` (any ``sovra.runtime.Agent``: SDK agents or hand-built).

    The ``route`` model picks up to ``max_specialists`` of them with a JSON-schema decision
    (``{"specialists": [...names], "reason": "..."}``; ``instructions`` is added to its prompt), or
    ``choose(question) -> [names]`` decides without a model. Each chosen specialist's graph runs as
    a subgraph (in parallel when several), in the same checkpoint, so a specialist's approval
    interrupt pauses the supervisor's run; its answer comes back through its ``to_answer``. Answers
    are merged under each specialist's description, citations renumbered ([1].. of the first, then
    the next), status "answered"/"extracted" if any specialist answered.
    """
    return Supervisor(
        name=name,
        description=description or f"Routes questions to: {', '.join(s.name for s in specialists)}.",
        specialists=list(specialists),
        route=route,
        instructions=instructions,
        max_specialists=max_specialists,
        choose=choose,
        needs_index=any(getattr(s, "needs_index", True) for s in specialists),
    )
