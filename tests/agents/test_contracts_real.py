"""The contracts agent on real contracts ingested the way a new user ingests a folder: no metadata
sidecars, an access list from ``--acl``, questions that name the agreement by its parties. Real
embedding model, real index, real audit log; bad input gets a clear answer, never an all-clear."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import make_settings
from fpdf import FPDF
from typer.testing import CliRunner

from sovra.agents import get_agent
from sovra.ingest import Ingestor
from sovra.runtime import Runtime
from sovra.ui.commands import make_connector, run_ingest

CUAD = Path(__file__).resolve().parents[1] / "fixtures" / "cuad"
WATERNOW_Q = (
    "Check the Exclusive Distributor Agreement between Water Now, Inc., Hydraspin USA, Inc. and Bestev "
    "Management, LLC against its term sheet for inconsistencies."
)
MARTIN_Q = (
    "Check the Marine Transportation Agreement between Martin Operating Partnership L.P. and Midstream Fuel "
    "Service LLC against its term sheet for inconsistencies."
)


def _scanned_pdf(path: Path) -> None:
    """A PDF page with a drawing and no text layer, as a scanner without OCR makes it."""
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 150, 200, style="F")
    pdf.output(str(path))


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("real-contracts")
    folder = root / "contracts"
    folder.mkdir()
    for f in CUAD.glob("*.t*"):
        shutil.copy(f, folder / f.name)
    (folder / "empty-agreement.txt").write_bytes(b"")
    _scanned_pdf(folder / "scanned-lease.pdf")
    (folder / "Consulting_Agreement.term-sheet.md").write_text(
        "# Term sheet: Consulting Agreement\n\n| Term | Agreed position |\n| --- | --- |\n"
        "| Parties | Tailspin Toys Ltd.; Wingtip Partners LLC |\n| Governing law | the laws of Ontario |\n"
    )
    data = root / "data"
    data.mkdir()
    (data / "users.json").write_text(
        json.dumps({"lena": {"name": "Lena", "groups": ["legal"]}, "omar": {"name": "Omar", "groups": []}})
    )
    settings = make_settings(data)
    report = run_ingest(settings, path=folder, name="contracts", default_acl=["group:legal"])
    rt = Runtime(settings)
    yield rt, report, folder
    rt.close()


def test_ingest_reports_what_it_could_not_read_and_carries_on(real):
    _, report, _ = real
    failed = {doc_id.rsplit(":", 1)[-1]: why for doc_id, why in report.failed}
    assert set(failed) == {"empty-agreement.txt", "scanned-lease.pdf"}, failed
    assert report.added == 5 and not report.no_acl


def test_a_changed_term_is_reported_with_citations_on_both_sides(real):
    rt, _, _ = real
    a = rt.ask(get_agent("contracts"), WATERNOW_Q, "lena")
    assert a.status == "answered", a.text
    assert "1 inconsistency found" in a.text and "Renewal term: 5 years" in a.text and "1 year" in a.text
    assert "No inconsistency found" not in a.text
    quotes = [c.quote for c in a.citations]
    assert any("five (5) year" in q for q in quotes) and any("1 year" in q for q in quotes)
    assert all(c.chunk_id for c in a.citations)  # every quote names its chunk: faces check who may read it
    assert {c.url.rsplit("/", 1)[-1] for c in a.citations} == {
        "WaterNowInc_20191120_10-Q_EX-10.12_11900227_EX-10.12_Distributor_Agreement.txt",
        "WaterNowInc_20191120_10-Q_EX-10.12_11900227_EX-10.12_Distributor_Agreement.term-sheet.md",
    }
    kinds = [r.kind for r in rt.services.audit.records(a.run_id)]
    assert "tool.find_contract_documents" in kinds and "contracts.compare" in kinds


def test_a_consistent_pair_gets_the_all_clear_listing_what_was_compared(real):
    rt, _, _ = real
    a = rt.ask(get_agent("contracts"), MARTIN_Q, "lena")
    assert "No inconsistency found" in a.text, a.text
    assert "Agrees with" in a.text and "governing law" in a.text.lower()


def test_a_term_sheet_without_its_contract_says_nothing_was_compared(real):
    rt, _, _ = real
    a = rt.ask(
        get_agent("contracts"),
        "Check the Consulting Agreement between Tailspin Toys Ltd. and Wingtip Partners LLC against its term sheet.",
        "lena",
    )
    assert a.status == "not_found"
    assert "no contract it belongs to" in a.text and "nothing was compared" in a.text
    assert "No inconsistency found" not in a.text


def test_two_candidate_contracts_are_named_not_guessed(real, tmp_path):
    rt, _, folder = real
    src = folder / "MARTINMIDSTREAMPARTNERSLP_01_23_2004-EX-10.3-TRANSPORTATION_SERVICES_AGREEMENT.txt"
    twin = folder / "Martin_Marine_Transportation_Agreement_executed_copy.txt"
    shutil.copy(src, twin)
    try:
        _sync(rt, folder)
        a = rt.ask(get_agent("contracts"), MARTIN_Q, "lena")
    finally:
        twin.unlink()
        _sync(rt, folder)
    assert a.status == "not_found", a.text
    assert "Several agreements match" in a.text and "nothing was compared" in a.text


def _sync(rt: Runtime, folder: Path) -> None:
    """Re-sync the folder through the runtime's own index handle (the embedded index admits one)."""
    svc, settings = rt.services, rt.services.settings
    ing = Ingestor(svc.index, svc.embedder, settings.paths.state_db, settings.chunk_chars, settings.chunk_overlap)
    report = ing.run([make_connector("filesystem", "contracts", folder, ["group:legal"])])
    assert report.added + report.deleted >= 1, report.summary()


def test_a_user_outside_the_access_list_learns_nothing(real):
    rt, _, _ = real
    a = rt.ask(get_agent("contracts"), WATERNOW_Q, "omar")
    assert a.status == "not_found" and not a.citations
    assert "Water" not in a.text.replace("Water Now", "") and "5 years" not in a.text


def test_the_cli_says_who_may_read_files_without_a_sidecar(tmp_path, monkeypatch):
    from sovra.ui.cli import app

    folder = tmp_path / "contracts"
    folder.mkdir()
    shutil.copy(
        CUAD / "WaterNowInc_20191120_10-Q_EX-10.12_11900227_EX-10.12_Distributor_Agreement.term-sheet.md", folder
    )
    monkeypatch.setenv("SOVRA_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(folder)])
    assert res.exit_code == 0, res.output
    assert "nobody can read them" in res.output and "--acl" in res.output
    res = runner.invoke(app, ["ingest", str(folder), "--acl", "group:legal"])
    assert res.exit_code == 0 and "1 permission changes" in res.output
    assert "readable by: group:legal" in res.output
    sources = json.loads((tmp_path / "data" / "sources.json").read_text())
    assert sources["contracts"]["default_acl"] == ["group:legal"]


def test_a_document_longer_than_the_reader_is_flagged_and_blocks_the_all_clear(real, monkeypatch):
    import sovra.tools.contract_docs as contract_docs

    rt, _, _ = real
    monkeypatch.setattr(contract_docs, "_MAX_CHUNKS_PER_DOC", 5)  # the 14-page Martin contract is "too long"
    a = rt.ask(get_agent("contracts"), MARTIN_Q, "lena")
    assert "No inconsistency found" not in a.text, a.text
    assert "longer than the reader's limit" in a.text and "not compared" in a.text


@pytest.mark.slow
def test_a_300_page_agreement_gets_an_answer_not_a_traceback(tmp_path):
    """A long real-world filing: 300 PDF pages of clauses around a real contract's opening."""
    text = (CUAD / "WaterNowInc_20191120_10-Q_EX-10.12_11900227_EX-10.12_Distributor_Agreement.txt").read_text()
    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", size=9)
    body = text.encode("latin-1", "replace").decode("latin-1")
    while pdf.page_no() < 300:
        pdf.multi_cell(0, 4, body[:20000], new_x="LMARGIN", new_y="NEXT")
    folder = tmp_path / "contracts"
    folder.mkdir()
    pdf.output(str(folder / "Water_Now_Distributor_Agreement_with_schedules.pdf"))
    shutil.copy(
        CUAD / "WaterNowInc_20191120_10-Q_EX-10.12_11900227_EX-10.12_Distributor_Agreement.term-sheet.md", folder
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps({"lena": {"name": "Lena", "groups": ["legal"]}}))
    settings = make_settings(data)
    report = run_ingest(settings, path=folder, default_acl=["group:legal"])
    assert not report.failed, report.failed
    rt = Runtime(settings)
    try:
        a = rt.ask(get_agent("contracts"), WATERNOW_Q, "lena")
    finally:
        rt.close()
    assert a.status in ("answered", "not_found"), a.text
    assert "No inconsistency found" not in a.text  # the sheet's renewal term differs from the contract's
    assert "Renewal term" in a.text


def test_the_documented_commands_ingest_and_ask_on_real_contracts(tmp_path, monkeypatch):
    """docs/contracts.md: `sovra ingest ./contracts --acl group:legal`, then `sovra ask --agent contracts`."""
    from sovra.ui.cli import app

    folder = tmp_path / "contracts"
    folder.mkdir()
    for f in CUAD.glob("WaterNow*"):
        shutil.copy(f, folder / f.name)
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_text(json.dumps({"lena": {"name": "Lena", "groups": ["legal"]}}))
    monkeypatch.setenv("SOVRA_DATA_DIR", str(data))
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(folder), "--acl", "group:legal"])
    assert res.exit_code == 0 and "2 added" in res.output, res.output
    res = runner.invoke(app, ["ask", "--agent", "contracts", "--as", "lena", WATERNOW_Q])
    assert res.exit_code == 0, res.output
    assert "Renewal term: 5 years" in res.output and "Sources" in res.output and "audit run" in res.output
