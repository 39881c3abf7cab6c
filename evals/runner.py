"""Runs an eval dataset against a Sovra deployment and scores every question.

Two passes per question: a retrieval pass (``search_documents`` as the asking user, top ``k``)
scored with ir-measures, and, for items that name an agent, a full ``Runtime.ask`` scored on the
answer, its citations, refusals, ACL leakage, latency and tokens (read back from the audit log).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from sovra.config import Settings
from sovra.errors import SovraError
from sovra.evals import metrics as M
from sovra.evals.dataset import EvalItem, doc_matches
from sovra.identity import Directory, User
from sovra.runtime import Answer, Runtime

log = logging.getLogger(__name__)

RESULT_VERSION = 1
# Metrics where higher is better; shown in reports and compared between runs.
SUMMARY_METRICS = (
    *M.RETRIEVAL_MEASURES,
    *M.PASSAGE_MEASURES,
    "must_contain",
    "first_fact",
    "numeric_match",
    "exact_match",
    "token_f1",
    "citation_precision",
    "citation_recall",
    "refusal_correct",
    "answered_when_expected",
    "judge",
)
COST_METRICS = ("acl_leak", "latency_s", "tokens_in", "tokens_out")


@dataclass
class EvalConfig:
    suite: str
    dataset: str
    mode: str = "hybrid"  # retrieval mode forced on every search: plants a sparse/dense regression
    k: int = 10
    seed: int = 20251127
    judge: bool = False
    ask_agents: bool = True
    # TEST ONLY: every user is resolved with the groups of all users, as if the ACL filter were
    # off. Exists so CI can prove that the harness catches an ACL leak. Never use it otherwise.
    plant_acl_leak: bool = False


@dataclass
class QuestionResult:
    id: str
    user: str
    kind: str
    question: str
    expected: str | None
    metrics: dict[str, float | None] = field(default_factory=dict)
    retrieved: list[str] = field(default_factory=list)
    answer: str | None = None
    status: str | None = None
    run_id: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    error: str | None = None


class EvalGateError(SovraError):
    """An eval result broke a hard gate (an ACL leak): CI must fail."""

    exit_code = 4


def check_gates(result: dict[str, Any]) -> None:
    """Raise when any question leaked restricted content: the one gate with zero tolerance."""
    leaked = [q for q in result["questions"] if q["leaks"]]
    if leaked:
        first = leaked[0]
        raise EvalGateError(
            f"ACL leak in {len(leaked)} question(s), e.g. {first['id']} as {first['user']}: {first['leaks'][0]}",
            hint="a user saw a document or phrase their permissions exclude; see the report's LEAK entries",
        )


class _AllGroupsDirectory:
    """TEST ONLY (``plant_acl_leak``): resolves each user with every group in the directory."""

    def __init__(self, real: Directory) -> None:
        self._real = real
        self._groups = tuple(sorted({g for u in real for g in u.groups}))

    def get(self, user_id: str) -> User:
        u = self._real.get(user_id)
        return User(id=u.id, name=u.name, groups=self._groups)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._real)


class _ForcedModeIndex:
    """Wraps the index so every search (the agent's too) uses one retrieval mode."""

    def __init__(self, real: Any, mode: str) -> None:
        self._real, self._mode = real, mode

    def search(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["mode"] = self._mode
        return self._real.search(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _doc_key(item: EvalItem, doc_id: str, url: str) -> str:
    """The gold key this document matches, else its own id (so qrels and run share ids)."""
    for e in [*item.evidence]:
        if e.doc and doc_matches(e.doc, doc_id, url):
            return e.doc
    return doc_id


def _forbidden_hits(item: EvalItem, docs: list[tuple[str, str]]) -> list[str]:
    return sorted({f for f in item.forbidden_docs for d, u in docs if doc_matches(f, d, u)})


def _passage_relevant(item: EvalItem, doc_id: str, url: str, text: str) -> bool:
    """A chunk answers the question when it is in a gold document and holds a gold quote."""
    flat = " ".join(text.lower().split())
    return any(
        e.doc and e.quote and doc_matches(e.doc, doc_id, url) and " ".join(e.quote.lower().split()) in flat
        for e in item.evidence
    )


def evidence_page_rank(item: EvalItem, hits: Sequence[Any]) -> int | None:
    """1-based rank of the first hit from a gold document and a gold page; None: none in ``hits``
    (or the item has no gold page)."""
    gold = [(e.doc, int(e.page)) for e in item.evidence if e.doc and e.page]
    for rank, h in enumerate(hits, 1):
        if any(doc_matches(doc, h.doc_id, h.url) and h.page == page for doc, page in gold):
            return rank
    return None


def _retrieve(
    rt: Runtime, item: EvalItem, user: User, cfg: EvalConfig
) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, bool]], int | None]:
    from sovra.tools.base import ToolContext
    from sovra.tools.search import SearchArgs, search_documents

    res = search_documents(SearchArgs(query=item.question, limit=cfg.k, mode=cfg.mode), ToolContext(user, rt.services))
    ranked: list[str] = []
    seen: list[tuple[str, str]] = []
    passages = [(h.chunk_id, _passage_relevant(item, h.doc_id, h.url, h.text)) for h in res.hits]
    for h in res.hits:
        key = _doc_key(item, h.doc_id, h.url)
        if key not in ranked:  # document-level ranking: a document's best chunk sets its rank
            ranked.append(key)
            seen.append((h.doc_id, h.url))
    return ranked, seen, passages, evidence_page_rank(item, res.hits)


def _citation_recall(item: EvalItem, answer: Answer) -> float | None:
    if not item.evidence:
        return None
    cited_docs = [(c.chunk_id.rsplit("#", 1)[0] if c.chunk_id else "", c.url) for c in answer.citations]
    cited_rows = {r for c in answer.citations for r in c.rows}
    parts: list[float] = []
    for e in item.evidence:
        if e.rows:
            parts.append(len(cited_rows & set(e.rows)) / len(e.rows))
        elif e.doc:
            parts.append(float(any(doc_matches(e.doc, d, u) for d, u in cited_docs)))
    return sum(parts) / len(parts) if parts else None


def _audit_steps(rt: Runtime, run_id: str) -> tuple[list[dict[str, Any]], int, int]:
    steps, tin, tout = [], 0, 0
    for r in rt.services.audit.records(run_id):
        if r.kind == "model.call" and isinstance(r.data, dict):
            tin += int(r.data.get("input_tokens") or 0)
            tout += int(r.data.get("output_tokens") or 0)
        brief = json.dumps(r.data, default=str, ensure_ascii=False)
        steps.append({"seq": r.seq, "kind": r.kind, "data": brief[:600] + ("..." if len(brief) > 600 else "")})
    return steps, tin, tout


def _score_answer(item: EvalItem, ans: Answer, res: QuestionResult) -> None:
    m = res.metrics
    text = ans.text
    refused = ans.status == "not_found"
    if item.expects_refusal:
        m["refusal_correct"] = float(refused)
        if "first-answer" in item.tags:
            m["first_fact"] = float(refused and not M.leaked_phrases(text, item.forbidden_phrases))
    else:
        m["answered_when_expected"] = float(not refused)
        if item.must_contain:
            m["must_contain"] = M.contains_all(text, item.must_contain)
            m["first_fact"] = M.first_units_hold(text, item.must_contain)
        if item.expected_value is not None:
            m["numeric_match"] = M.numeric_match(text, item.expected_value, item.tolerance)
        if item.expected_answer:
            m["exact_match"] = M.exact_match(text, item.expected_answer)
            m["token_f1"] = M.token_f1(text, item.expected_answer)
        m["citation_recall"] = _citation_recall(item, ans)
    m["citation_precision"] = M.citation_precision(text, {c.n: c.quote for c in ans.citations})
    shown = [*ans.citations, *ans.evidence]
    docs = [(c.chunk_id.rsplit("#", 1)[0] if c.chunk_id else "", c.url) for c in shown]
    res.leaks += [f"answer cites {d}" for d in _forbidden_hits(item, docs)]
    quoted = " ".join([text, *(c.quote for c in shown)])
    res.leaks += [f"answer reveals {p!r}" for p in M.leaked_phrases(quoted, item.forbidden_phrases)]


def run_items(settings: Settings, items: list[EvalItem], cfg: EvalConfig) -> dict[str, Any]:
    """Run every item and return the result document (what ``report.py`` renders)."""
    from sovra.agents import get_agent

    rt = Runtime(settings)
    svc = rt.services
    if cfg.mode != "hybrid":
        svc.__dict__["index"] = _ForcedModeIndex(svc.index, cfg.mode)
        # One leg alone, as `sovra bench docs` scores it: no entity/title scope stage on top.
        svc.settings = svc.settings.model_copy(update={"retrieval_scope": False})
    if cfg.plant_acl_leak:
        log.warning("TEST ONLY: ACL leak planted; every user is given every group")
        svc.__dict__["directory"] = _AllGroupsDirectory(svc.directory)
    started = time.perf_counter()
    results: list[QuestionResult] = []
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    p_qrels: dict[str, dict[str, int]] = {}
    p_run: dict[str, dict[str, float]] = {}
    try:
        for item in items:
            res = QuestionResult(item.id, item.user, item.kind, item.question, item.expected_answer)
            results.append(res)
            user = svc.directory.get(item.user)
            ranked, seen, passages, page_rank = _retrieve(rt, item, user, cfg)
            res.retrieved = ranked
            res.leaks += [f"search returned {d}" for d in _forbidden_hits(item, seen)]
            gold = {e.doc: e.relevance for e in item.evidence if e.doc}
            if gold:
                qrels[item.id] = gold
                run[item.id] = {d: float(len(ranked) - i) for i, d in enumerate(ranked)}
            if any(e.doc and e.page for e in item.evidence):
                for k in (1, 5, 10):  # a chunk from the gold document and a gold page in the top k
                    res.metrics[f"evidence_page@{k}"] = float(page_rank is not None and page_rank <= k)
            if any(e.quote for e in item.evidence):
                # Only retrieved chunks are judged, so only rank-of-first-hit measures are exact here.
                p_qrels[item.id] = {c: int(rel) for c, rel in passages}
                p_run[item.id] = {c: float(len(passages) - i) for i, (c, _) in enumerate(passages)}
            if item.agent and cfg.ask_agents:
                _ask(rt, get_agent(item.agent), item, cfg, res)
            res.metrics["acl_leak"] = float(bool(res.leaks))
            log.info("%s %s leaks=%d %s", item.id, res.status, len(res.leaks), res.metrics)
        for qid, scores in M.retrieval_scores(qrels, run).items():
            next(r for r in results if r.id == qid).metrics.update(scores)
        for qid, scores in M.passage_scores(p_qrels, p_run).items():
            next(r for r in results if r.id == qid).metrics.update(scores)
        config = _recorded_config(settings, cfg, rt)
    finally:
        rt.close()
    return {
        "version": RESULT_VERSION,
        "config": config,
        "seconds": round(time.perf_counter() - started, 2),
        "summary": summarize(results, cfg.seed),
        "questions": [asdict(r) for r in results],
    }


def _ask(rt: Runtime, agent: Any, item: EvalItem, cfg: EvalConfig, res: QuestionResult) -> None:
    t0 = time.perf_counter()
    try:
        ans = rt.ask(agent, item.question, item.user, interface="eval")
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
        log.warning("question %s failed: %s", item.id, res.error)
        return
    res.metrics["latency_s"] = time.perf_counter() - t0
    res.answer, res.status, res.run_id = ans.text, ans.status, ans.run_id
    res.citations = [
        {
            "n": c.n,
            "kind": c.kind,
            "title": c.title,
            "url": c.url,
            "page": c.page,
            "rows": list(c.rows)[:20],
            "quote": c.quote[:400],
        }
        for c in ans.citations
    ]
    res.audit, tin, tout = _audit_steps(rt, ans.run_id)
    res.metrics["tokens_in"], res.metrics["tokens_out"] = float(tin), float(tout)
    _score_answer(item, ans, res)
    if cfg.judge and item.expected_answer:
        from sovra.evals.judge import judge_answer

        try:
            score = judge_answer(
                rt.services.gateway, item.question, item.expected_answer, ans.text, [c.quote for c in ans.citations]
            )
        except Exception as exc:
            res.error = f"judge failed: {exc}"
            return
        res.judge = score.as_dict()
        res.metrics["judge"] = score.score


def summarize(results: list[QuestionResult], seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (*SUMMARY_METRICS, *COST_METRICS):
        values = [r.metrics[name] for r in results if r.metrics.get(name) is not None]
        if values:
            out[name] = M.bootstrap_mean(values, seed=seed).as_dict()  # type: ignore[arg-type]
    out["acl_leaks"] = sum(1 for r in results if r.leaks)
    out["errors"] = sum(1 for r in results if r.error)
    out["questions"] = len(results)
    out["by_kind"] = {
        kind: {
            name: sum(v) / len(v)
            for name in SUMMARY_METRICS
            if (v := [x for r in results if r.kind == kind and (x := r.metrics.get(name)) is not None])
        }
        for kind in sorted({r.kind for r in results})
    }
    return out


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def _recorded_config(settings: Settings, cfg: EvalConfig, rt: Runtime) -> dict[str, Any]:
    dataset = Path(cfg.dataset)
    emb = rt.services.embedder
    return {
        **asdict(cfg),
        "dataset_sha256": hashlib.sha256(dataset.read_bytes()).hexdigest() if dataset.is_file() else None,
        "llm_model": settings.llm_model,
        "llm_base_url": settings.llm_base_url or "local (bundled GGUF)",
        "local_model_path": str(settings.local_model_path) if settings.local_model_path else "default",
        "answer_mode": settings.resolved_answer_mode,
        "embedding_model": emb.model_id,
        "top_k": settings.top_k,
        "min_evidence_score": settings.min_evidence_score,
        "index": settings.qdrant_url or "embedded qdrant-edge",
        "data_dir": str(settings.data_dir),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "packages": {
            p: _version(p)
            for p in ("sovra", "ir-measures", "pytrec-eval-terrier", "numpy", "scipy", "litellm", "langgraph")
        },
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
