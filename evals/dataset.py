"""Eval datasets as JSONL files: one ``EvalItem`` per line (schema in ``evals/README.md``).

Two sources: our own JSONL files (``evals/datasets/demo.jsonl`` is built from the demo corpus's
``planted_facts.json`` by :func:`demo_items`) and BEIR-style public benchmarks
(``corpus.jsonl`` / ``queries.jsonl`` / ``qrels/*.tsv``) loaded by :func:`load_beir`.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, Field, ValidationError

from sovra.errors import InputError

DATASETS_DIR = Path(__file__).parent / "datasets"
Behavior = Literal["answer", "not_found", "no_access"]


class Evidence(BaseModel):
    """One piece of gold evidence: a document (optionally a page or a quoted span) or ledger rows."""

    doc: str | None = Field(default=None, description="Index doc id, or the file name at the end of its URL.")
    page: int | None = None
    quote: str | None = Field(default=None, description="A span of the document that holds the answer.")
    rows: list[str] = Field(default_factory=list, description="Ledger row keys, e.g. 'journal_entries#42'.")
    relevance: int = Field(default=1, ge=1)


class EvalItem(BaseModel):
    id: str
    user: str = Field(description="The asking user: their permissions decide what they may read.")
    question: str
    kind: str = "general"  # e.g. policy, contract, ledger, consistency, acl, acl_probe, refusal
    agent: str | None = Field(default="assistant", description="Agent to ask; null = retrieval only.")
    expected_answer: str | None = None
    expected_value: float | None = Field(default=None, description="A number the answer must contain.")
    tolerance: float = Field(default=0.005, ge=0, description="Relative tolerance for expected_value.")
    must_contain: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    expected_behavior: Behavior = "answer"
    forbidden_phrases: list[str] = Field(default_factory=list, description="Must never appear in the answer.")
    forbidden_docs: list[str] = Field(default_factory=list, description="Documents this user must never see.")
    tags: list[str] = Field(default_factory=list)

    @property
    def expects_refusal(self) -> bool:
        return self.expected_behavior != "answer"


def doc_matches(key: str, doc_id: str, url: str) -> bool:
    """Whether a gold ``doc`` key names this document: by id, or by the file name of its URL."""
    if key == doc_id:
        return True
    name = unquote(urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]) if url else ""
    return bool(name) and key == name


def load_jsonl(path: Path) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: set[str] = set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read eval dataset {path}: {exc.strerror or exc}") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            item = EvalItem.model_validate_json(line)
        except ValidationError as exc:
            raise InputError(
                f"{path}:{n}: not a valid eval item: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}",
                hint="see evals/README.md for the schema",
            ) from exc
        if item.id in seen:
            raise InputError(f"{path}:{n}: duplicate item id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    return items


def save_jsonl(items: Iterable[EvalItem], path: Path) -> None:
    text = "".join(i.model_dump_json(exclude_defaults=True) + "\n" for i in items)
    Path(path).write_text(text, encoding="utf-8")


# --- the demo dataset, derived from the planted facts -------------------------------------------

# Questions the corpus cannot answer: the agent must say so rather than quote something near.
UNANSWERABLE = [
    ("R-001", "alice", "What is the pet insurance allowance for employees' horses?"),
    ("R-002", "bob", "What was Nordbank's share price at the close on 3 March 2026?"),
]


def _gold_rows(ledger: Path, contract_id: str, year: str) -> list[str]:
    con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT entry_id FROM journal_entries WHERE reference = ? AND substr(entry_date, 1, 4) = ? "
            "AND debit > 0 ORDER BY entry_id",
            (contract_id, year),
        ).fetchall()
    finally:
        con.close()
    return [f"journal_entries#{r[0]}" for r in rows]


def demo_items(corpus_dir: Path) -> list[EvalItem]:
    """The demo eval set: the planted questions, ACL probes for every restricted document and
    every user denied it, and unanswerable questions. Deterministic for a given corpus."""
    facts = json.loads((corpus_dir / "planted_facts.json").read_text(encoding="utf-8"))
    restricted = facts["restricted_documents"]

    def denied(user: str) -> tuple[list[str], list[str]]:
        docs = [r for r in restricted if user in r["denied_users"]]
        return [Path(r["path"]).name for r in docs], [r["phrase"] for r in docs]

    items: list[EvalItem] = []
    for q in facts["questions"]:
        docs, phrases = denied(q["user"])
        evidence: list[Evidence] = []
        for src in q["sources"]:
            if src == "ledger.sqlite":
                continue
            # The first must-contain phrase marks the answer-bearing passage (too short: no quote).
            quote = next((m for m in q["must_contain"] if len(m) >= 3), None)
            evidence.append(Evidence(doc=Path(src).name, quote=quote))
        if q["kind"] in ("ledger", "consistency") and q.get("expected_value") is not None:
            contract = next((i for i in facts["inconsistencies"] if i.get("ledger_total") == q["expected_value"]), None)
            ref, year = _ledger_ref(q, contract)
            if ref:
                evidence.append(Evidence(rows=_gold_rows(corpus_dir / "ledger.sqlite", ref, year)))
        behavior = q.get("expected_behavior", "answer")
        items.append(
            EvalItem(
                id=q["id"],
                user=q["user"],
                question=q["question"],
                kind=q["kind"],
                expected_answer=q["expected_answer"],
                expected_value=q.get("expected_value"),
                must_contain=q["must_contain"],
                evidence=evidence,
                expected_behavior=behavior,
                forbidden_phrases=sorted(set(phrases) | set(q.get("forbidden", []))),
                forbidden_docs=docs,
            )
        )
    for n, r in enumerate(restricted, start=1):
        for user in r["denied_users"]:
            items.append(
                EvalItem(
                    id=f"ACL-{n:02d}-{user}",
                    user=user,
                    question=f"{r['title']}: {r['phrase']}",
                    kind="acl_probe",
                    agent=None,
                    expected_behavior="no_access",
                    forbidden_phrases=[r["phrase"]],
                    forbidden_docs=[Path(r["path"]).name],
                )
            )
    for qid, user, question in UNANSWERABLE:
        docs, phrases = denied(user)
        items.append(
            EvalItem(
                id=qid,
                user=user,
                question=question,
                kind="refusal",
                expected_behavior="not_found",
                forbidden_phrases=phrases,
                forbidden_docs=docs,
            )
        )
    return items


def _ledger_ref(q: dict[str, Any], inconsistency: dict[str, Any] | None) -> tuple[str | None, str]:
    """The contract reference and year whose payments a ledger question is about."""
    year = next((w for w in q["question"].replace("?", " ").split() if w.isdigit() and len(w) == 4), "")
    if inconsistency is not None:
        return inconsistency["contract_id"], str(inconsistency.get("year", year))
    from sovra.evals.demo_corpus_contract_specs import ACME

    return (ACME.contract_id if "Acme" in q["question"] else None), year


# --- BEIR-style public benchmarks ---------------------------------------------------------------


@dataclass
class BeirDataset:
    """A BEIR-layout benchmark: documents, queries and graded relevance judgements."""

    name: str
    corpus: dict[str, dict[str, str]]  # doc id -> {"title", "text"}
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> relevance

    def items(self, user: str = "eval") -> list[EvalItem]:
        """Retrieval-only eval items for the judged queries."""
        return [
            EvalItem(
                id=qid,
                user=user,
                question=self.queries[qid],
                kind="beir",
                agent=None,
                evidence=[Evidence(doc=d, relevance=rel) for d, rel in sorted(docs.items()) if rel > 0],
                tags=[self.name],
            )
            for qid, docs in sorted(self.qrels.items())
            if qid in self.queries and any(r > 0 for r in docs.values())
        ]


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{n}: not JSON: {exc.msg}") from exc


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """Load ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (or ``qrels.tsv``)."""
    folder = Path(folder)
    qrels_path = next((p for p in (folder / "qrels" / f"{split}.tsv", folder / "qrels.tsv") if p.is_file()), None)
    for need in (folder / "corpus.jsonl", folder / "queries.jsonl"):
        if not need.is_file():
            raise InputError(f"{folder} is not a BEIR dataset: {need.name} is missing")
    if qrels_path is None:
        raise InputError(f"{folder} is not a BEIR dataset: no qrels/{split}.tsv or qrels.tsv")
    corpus = {
        str(d["_id"]): {"title": str(d.get("title") or ""), "text": str(d.get("text") or "")}
        for d in _read_jsonl(folder / "corpus.jsonl")
    }
    queries = {str(q["_id"]): str(q["text"]) for q in _read_jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if not row or (n == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # blank line or the "query-id corpus-id score" header
            if len(row) == 4:  # TREC layout: qid, iteration, doc, rel
                row = [row[0], row[2], row[3]]
            if len(row) != 3:
                raise InputError(f"{qrels_path}:{n}: expected query-id, corpus-id, score")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return BeirDataset(name=folder.name, corpus=corpus, queries=queries, qrels=qrels)


def find_beir_datasets(root: Path) -> list[Path]:
    """Folders under ``root`` (e.g. ../shared/eval-data) that look like BEIR datasets."""
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/corpus.jsonl") if (p.parent / "queries.jsonl").is_file())
