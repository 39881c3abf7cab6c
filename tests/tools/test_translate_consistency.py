"""A document and the translation `sovra translate` made of it, both ingested as a user would: the
consistency agent finds them consistent; after a retranslation that changed an amount, the checker
flags it and the agent reports the difference, cited on both sides. Model: the fake vLLM over HTTP;
embeddings and index: the real ones."""

from __future__ import annotations

import json
from pathlib import Path

from fakes.vllm_server import FakeVLLM

from sovra.agents import get_agent
from sovra.runtime import Runtime
from sovra.tools.translate import translate_document
from sovra.ui.commands import run_ingest

from .test_translate import ADAPTER, EN, FR, answer_with, settings

QUESTION = (
    "Is the French version of the Acme Bank / Beta Industries facility agreement consistent with the English one?"
)


def _ask(s, question: str):  # type: ignore[no-untyped-def]
    rt = Runtime(s)
    try:
        return rt.ask(get_agent("consistency"), question, "lena")
    finally:
        rt.close()


def test_consistency_agent_over_a_document_and_its_translation(tmp_path: Path) -> None:
    fake = FakeVLLM(adapters=(ADAPTER,))
    try:
        s = settings(tmp_path, fake.base_url)
        s.data_dir.mkdir(parents=True)
        (s.data_dir / "users.json").write_text(json.dumps({"lena": {"groups": ["legal"]}}))
        folder = tmp_path / "docs"
        folder.mkdir()
        src = folder / "facility-agreement-en.md"
        src.write_text("\n\n".join(EN) + "\n", encoding="utf-8")
        out = folder / "facility-agreement-fr.md"

        answer_with(fake, dict(zip(EN, FR, strict=True)))
        report = translate_document(src, s, to="fr", source="en", out=out)
        assert not report.changed
        run_ingest(s, path=folder, name="docs", default_acl=["group:legal"])
        a = _ask(s, QUESTION)
        assert a.status == "answered" and "Consistent: all" in a.text, a.text

        planted = [t.replace("1 000 000,50 EUR", "1 100 000,50 EUR") for t in FR]
        answer_with(fake, dict(zip(EN, planted, strict=True)))
        report = translate_document(src, s, to="fr", source="en", out=out, fresh=True)
        changes = [(c.kind, c.source, c.translation) for seg in report.segments for c in seg.check.changes]
        assert changes == [("amount", "EUR 1,000,000.50", "EUR 1,100,000.50")], changes
    finally:
        fake.close()
    run_ingest(s, source="docs")
    a = _ask(s, QUESTION)
    assert "Consistent" not in a.text and "fact(s) stated in one document and not found in the other" in a.text
    assert "amount EUR 1,000,000.50 in facility-agreement-en" in a.text, a.text
    assert "amount EUR 1,100,000.50 in facility-agreement-fr" in a.text, a.text
    cited = {c.url.rsplit("/", 1)[-1] for c in a.citations[:2]}
    assert cited == {"facility-agreement-en.md", "facility-agreement-fr.md"} and all(c.chunk_id for c in a.citations)
