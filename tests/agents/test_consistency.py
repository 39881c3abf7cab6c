"""The consistency agent: a document against its translation, ingested as a user would (no sidecars,
``--acl``), with the real embedding model and index; a changed rate is reported on both sides, a
document without a counterpart gets no verdict, and a user outside the access list learns nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import make_settings

from sovra.agents import get_agent
from sovra.runtime import Runtime
from sovra.ui.commands import run_ingest

BILINGUAL = Path(__file__).resolve().parents[1] / "fixtures" / "bilingual"
QUESTION = (
    "Is the French version of the Nordbank / Rheintal Logistik facility agreement consistent with the English one?"
)


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("bilingual")
    folder = root / "docs"
    shutil.copytree(BILINGUAL, folder)
    data = root / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps({"lena": {"groups": ["legal"]}, "omar": {"groups": []}}))
    settings = make_settings(data)
    run_ingest(settings, path=folder, name="docs", default_acl=["group:legal"])
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def test_a_changed_rate_in_the_translation_is_cited_on_both_sides(rt):
    a = rt.ask(get_agent("consistency"), QUESTION, "lena")
    assert a.status == "answered", a.text
    assert "2 fact(s) stated in one document and not found in the other" in a.text
    assert "percentage 2.1% in loan-agreement-en" in a.text and "percentage 2.35% in loan-agreement-fr" in a.text
    assert "Consistent" not in a.text
    cited = {c.url.rsplit("/", 1)[-1] for c in a.citations[:2]}
    assert cited == {"loan-agreement-en.md", "loan-agreement-fr.md"} and all(c.chunk_id for c in a.citations)
    kinds = [r.kind for r in rt.services.audit.records(a.run_id)]
    assert "tool.find_document_pair" in kinds and "consistency.compare" in kinds


def test_a_document_without_a_translation_gets_no_verdict(rt):
    a = rt.ask(get_agent("consistency"), "Is the Keizersgracht office lease consistent with its translation?", "lena")
    assert a.status == "not_found" and "Nothing was compared" in a.text
    assert "No translation or summary of lease" in a.text and "Consistent" not in a.text


def test_a_user_outside_the_access_list_learns_nothing(rt):
    a = rt.ask(get_agent("consistency"), QUESTION, "omar")
    assert a.status == "not_found" and not a.citations and "2.35" not in a.text
