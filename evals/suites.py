"""Named eval suites: ``quick`` (CI), ``demo`` (every demo question) and ``full`` (deployments).

``quick`` asks the agent a handful of questions, one per flagship behaviour, and runs the retrieval
and ACL probes for all the rest; ``demo`` asks the agent everything in ``datasets/demo.jsonl``;
``full`` adds the LLM judge and every BEIR dataset found under ``SOVRA_EVAL_DATA`` (default
``../shared/eval-data``), each ingested into its own data dir next to the report.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sovra.config import Settings
from sovra.documents import Document, Page
from sovra.errors import InputError
from sovra.evals.dataset import DATASETS_DIR, BeirDataset, EvalItem, find_beir_datasets, load_beir, load_jsonl
from sovra.evals.runner import EvalConfig, run_items

log = logging.getLogger(__name__)

DEMO_DATASET = DATASETS_DIR / "demo.jsonl"
# One agent question per behaviour: policy, contract, ledger, ACL allowed, ACL denied, refusal.
QUICK_AGENT_ITEMS = ("Q-001", "Q-007", "Q-010", "Q-013", "Q-014", "R-001")
SUITES = ("quick", "demo", "full")
# One suite per flagship agent, on the demo bank: items in datasets/<name>.jsonl (built from planted_facts.json).
AGENT_SUITES = ("policy", "contracts", "reconcile")
# The default agent's first answer (issue 24): first_fact = the opening holds the asked fact.
ANSWER_SUITES = ("answers",)


def default_eval_data() -> Path:
    return Path(os.environ.get("SOVRA_EVAL_DATA", "../shared/eval-data"))


def suite_items(suite: str) -> tuple[list[EvalItem], Path]:
    """The items of a named suite or a JSONL file path."""
    if suite in SUITES:
        items = load_jsonl(DEMO_DATASET)
        if suite == "quick":
            items = [i if i.id in QUICK_AGENT_ITEMS else i.model_copy(update={"agent": None}) for i in items]
        return items, DEMO_DATASET
    if suite in (*AGENT_SUITES, *ANSWER_SUITES):
        return load_jsonl(DATASETS_DIR / f"{suite}.jsonl"), DATASETS_DIR / f"{suite}.jsonl"
    path = Path(suite)
    if path.is_dir():
        return load_beir(path).items(), path
    if not path.is_file():
        suites = ", ".join((*SUITES, *AGENT_SUITES, *ANSWER_SUITES))
        raise InputError(f"no eval suite or dataset {suite!r}", hint=f"use one of {suites} or a .jsonl path")
    return load_jsonl(path), path


def _one_page(text: str) -> list[Page]:
    return [Page(number=1, text=text)]


class BeirListing:
    """A connector over a BEIR corpus: every document public, one page each."""

    def __init__(self, ds: BeirDataset) -> None:
        self.ds = ds
        self.name = f"beir-{ds.name}"

    def documents(self) -> Iterator[Document]:
        for doc_id, d in self.ds.corpus.items():
            text = (d["title"] + "\n\n" + d["text"]).strip()
            yield Document(
                id=doc_id,
                title=d["title"] or doc_id,
                source=self.name,
                url=f"beir://{self.ds.name}/{doc_id}",
                version=hashlib.sha256(text.encode()).hexdigest()[:16],
                acl=frozenset({"group:everyone"}),
                load=functools.partial(_one_page, text),
            )


def run_beir(base: Settings, folder: Path, out_dir: Path, cfg: EvalConfig) -> dict[str, Any]:
    """Ingest a BEIR corpus into its own embedded index and run its queries (retrieval only)."""
    from sovra.ingest import Ingestor
    from sovra.runtime import Runtime

    ds = load_beir(folder)
    data = out_dir / f"beir-{ds.name}"
    data.mkdir(parents=True, exist_ok=True)
    models = data / "models"
    if not models.exists():  # reuse the converted embedding model rather than converting again
        models.symlink_to(base.paths.models.resolve(), target_is_directory=True)
    (data / "users.json").write_text(json.dumps({"eval": {"name": "Eval", "groups": []}}))
    settings = base.model_copy(
        update={"data_dir": data, "users_file": None, "qdrant_url": None, "collection": f"beir-{ds.name}"}
    )
    settings.__dict__.pop("paths", None)  # model_copy keeps the cached paths of the base settings
    rt = Runtime(settings)
    try:
        svc = rt.services
        report = Ingestor(
            svc.index, svc.embedder, settings.paths.state_db, settings.chunk_chars, settings.chunk_overlap
        ).run([BeirListing(ds)])
        log.info("beir %s: %s", ds.name, report.summary())
    finally:
        rt.close()
    bcfg = EvalConfig(**{**cfg.__dict__, "suite": f"beir:{ds.name}", "dataset": str(folder), "judge": False})
    return run_items(settings, ds.items(user="eval"), bcfg)


def run_suite(settings: Settings, suite: str, out_dir: Path, **options: Any) -> dict[str, Any]:
    """Run a suite; the result document holds the main run and, for ``full``, one per BEIR dataset."""
    items, dataset = suite_items(suite)
    if suite in (*SUITES, *AGENT_SUITES, *ANSWER_SUITES):
        from sovra.evals.demo_corpus import AS_OF
        from sovra.ui.commands import setup_demo

        if settings.as_of is None:  # the demo questions' "this year" is the corpus's year
            settings = settings.model_copy(update={"as_of": AS_OF})
        report = setup_demo(settings)  # incremental: a no-op when the demo is already ingested
        if report.failed:
            raise InputError(f"the demo corpus did not ingest: {report.failed[:3]}")
    cfg = EvalConfig(suite=suite, dataset=str(dataset), judge=options.pop("judge", suite == "full"), **options)
    result = run_items(settings, items, cfg)
    if suite == "full":
        result["benchmarks"] = {
            folder.name: run_beir(settings, folder, out_dir, cfg) for folder in find_beir_datasets(default_eval_data())
        }
    return result
