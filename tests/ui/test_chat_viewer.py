"""The chat's document viewer below Streamlit: PDF text boxes and their highlights, the page a
citation opens at, the text around a passage, and the access checks (documents and ledger rows)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF

from sovra.audit import SYSTEM_RUN
from sovra.errors import SovraError
from sovra.index.base import SearchFilter
from sovra.runtime import Citation
from sovra.ui.chat import viewer
from sovra.ui.chat.viewer import TextBox, ViewerAccessError, highlight_rects, read_pdf_page

# ---------------------------------------------------------------------------------------------
# Highlight boxes


def _box(text: str, x: float, y: float, size: float = 10.0) -> TextBox:
    return TextBox(text, x, y, size, tuple(size * 0.5 for _ in text))


def test_a_passage_over_two_lines_gets_one_box_per_line_cut_at_its_ends():
    boxes = [_box("The fee is EUR 8,500 per", 10, 100), _box("month, payable in advance.", 10, 115)]
    rects = highlight_rects(boxes, ["EUR 8,500 per month,"])
    assert len(rects) == 2
    first, second = rects
    assert first.x == pytest.approx(10 + len("The fee is ") * 5)  # starts at "EUR", not at the line start
    assert first.w == pytest.approx(len("EUR 8,500 per") * 5)
    assert second.x == pytest.approx(10) and second.w == pytest.approx(len("month,") * 5)
    assert first.y < 100 < first.y + first.h  # the box covers the baseline


def test_highlights_ignore_whitespace_and_skip_text_not_on_the_page():
    boxes = [_box("annual  cap of", 0, 50), _box("EUR 120,000", 0, 65)]
    assert len(highlight_rects(boxes, ["annual cap of EUR\n120,000"])) == 2
    assert highlight_rects(boxes, ["not on this page at all"]) == []
    assert highlight_rects(boxes, ["", "   "]) == []


# ---------------------------------------------------------------------------------------------
# PDF pages


@pytest.fixture
def two_page_pdf(tmp_path: Path) -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.text(20, 30, "First page heading")
    pdf.add_page()
    pdf.text(20, 40, "The monthly fee is EUR 8,500.")
    pdf.text(20, 50, "Another line below.")
    path = tmp_path / "two.pdf"
    pdf.output(str(path))
    return path


def test_a_pdf_page_is_read_as_text_boxes_at_their_positions(two_page_pdf):
    page = read_pdf_page(two_page_pdf, 2)
    assert (page.number, page.count) == (2, 2)
    fee = next(b for b in page.boxes if "monthly fee" in b.text)
    mm = 72 / 25.4
    assert fee.x == pytest.approx(20 * mm, abs=0.5) and fee.y == pytest.approx(40 * mm, abs=0.5)
    assert fee.size == pytest.approx(12)
    # Helvetica's own widths: the run is as wide as fpdf2 measured it when it wrote the page.
    probe = FPDF()
    probe.set_font("helvetica", size=12)
    assert fee.width == pytest.approx(probe.get_string_width(fee.text) * mm, rel=0.01)
    rects = highlight_rects(page.boxes, ["EUR 8,500."])
    assert len(rects) == 1 and rects[0].x > fee.x
    svg = viewer.page_svg(page, rects)
    assert svg.count('class="sovra-highlight"') == 1 and "Another line below." in svg
    assert "First page heading" not in svg


def test_a_page_that_is_not_there_or_a_broken_file_is_a_plain_error(two_page_pdf, tmp_path):
    with pytest.raises(SovraError, match="2 page"):
        read_pdf_page(two_page_pdf, 3)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot really a pdf")
    with pytest.raises(SovraError, match="cannot be drawn"):
        read_pdf_page(broken, 1)


def test_markup_in_a_document_is_drawn_as_text(tmp_path):
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.text(20, 30, "<script>alert(1)</script> & co")
    path = tmp_path / "markup.pdf"
    pdf.output(str(path))
    svg = viewer.page_svg(read_pdf_page(path, 1))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


# ---------------------------------------------------------------------------------------------
# Opening a cited document as a user (the demo bank)


def _chunks(rt, principal: str, name_part: str):
    hits = rt.services.index.chunks(SearchFilter(principals=(principal,)))
    return sorted((h for h in hits if name_part in h.url), key=lambda h: (h.page, h.char_start))


def _refusals(rt, user_id: str) -> int:
    return sum(1 for r in rt.services.audit.records(SYSTEM_RUN) if r.kind == "viewer.refused" and r.user_id == user_id)


def test_bob_opens_the_cited_pdf_at_the_cited_page_with_the_passage(demo_runtime):
    rt = demo_runtime
    bob = rt.services.directory.get("bob")
    chunks = _chunks(rt, "group:finance", "acme-office-supplies")
    cited = next(h for h in chunks if h.page > 1 and "." in h.text)
    sentence = next(s for s in cited.text.split(". ") if len(s) > 30).strip()
    c = Citation(n=1, kind="document", title=cited.title, url=cited.url, page=cited.page, chunk_id=cited.chunk_id)
    view = viewer.open_document(rt, bob, cited.chunk_id, c, f'"{sentence}" [1]')
    assert view.page == cited.page and view.is_pdf and view.local_path is not None
    assert [view.cited.text[s:e] for s, e in view.spans] == [sentence]
    assert view.file_url(view.page).endswith(f".pdf#page={cited.page}")
    svg, marks, count = viewer.cited_page_svg(view, view.local_path, view.page)
    assert marks >= 1 and count >= view.page
    assert f'data-page="{cited.page}"' in svg
    # Another page of the same document draws without highlights.
    other = 1 if cited.page != 1 else 2
    assert viewer.cited_page_svg(view, view.local_path, other)[1] == 0


def test_a_user_who_may_not_read_the_document_gets_the_same_refusal_as_for_none(demo_runtime):
    rt = demo_runtime
    alice = rt.services.directory.get("alice")
    secret = _chunks(rt, "group:finance", "acme-office-supplies")[0]
    before = _refusals(rt, "alice")
    # The citation is forged: it carries the restricted document's title, URL and chunk id.
    forged = Citation(n=1, kind="document", title=secret.title, url=secret.url, page=1, chunk_id=secret.chunk_id)
    with pytest.raises(ViewerAccessError) as refused:
        viewer.open_document(rt, alice, secret.chunk_id, forged)
    with pytest.raises(ViewerAccessError) as missing:
        viewer.open_document(rt, alice, "no-such-document#0")
    assert refused.value.message == missing.value.message == viewer.NOT_AVAILABLE
    assert secret.title not in refused.value.message
    assert _refusals(rt, "alice") == before + 2


def test_a_text_document_shows_the_text_around_the_passage(demo_runtime):
    rt = demo_runtime
    alice = rt.services.directory.get("alice")
    chunks = _chunks(rt, "group:employees", "greenleaf")
    assert len(chunks) >= 3, "the demo bank has a catering contract alice may read"
    cited = chunks[1]
    view = viewer.open_document(rt, alice, cited.chunk_id)
    text, spans, before, after = viewer.text_around(view)
    assert [text[s:e] for s, e in spans] == [cited.text]  # a bare chunk id highlights the chunk
    assert len(text) > len(cited.text) and text.startswith(chunks[0].text[:40])  # one chunk before
    assert not before and after == (len(chunks) > 3)  # "…" only where more text is left out
    assert not view.is_pdf


def test_ledger_rows_only_for_the_finance_group_and_only_the_cited_ones(demo_runtime):
    from sovra.tools.base import ToolContext
    from sovra.tools.ledger_tool import LedgerLookupArgs, ledger_lookup

    rt = demo_runtime
    bob, alice = rt.services.directory.get("bob"), rt.services.directory.get("alice")
    year = rt.services.settings.today.year
    res = ledger_lookup(
        LedgerLookupArgs(question="payments to Acme", counterparty="Acme", year=year),
        ToolContext(user=bob, services=rt.services),
    )
    assert res.found and len(res.row_keys) >= 2
    cited = tuple(res.row_keys[:2])
    c = Citation(n=1, kind="ledger", title=res.title, url=res.url, rows=cited, quote=res.summary)
    rows = viewer.ledger_rows(rt, bob, c)
    assert [f"journal_entries#{r['entry']}" for r in rows] == list(cited)
    assert {"date", "amount", "reference"} <= set(rows[0])
    with pytest.raises(ViewerAccessError, match="finance"):
        viewer.ledger_rows(rt, alice, c)


# ---------------------------------------------------------------------------------------------
# Page-level links outside the chat (CLI, API sources)


def test_a_pdf_citation_links_to_its_page_and_nothing_else_changes():
    pdf = Citation(n=1, kind="document", title="Acme", url="file:///srv/contracts/acme.pdf", page=3)
    assert pdf.link == "file:///srv/contracts/acme.pdf#page=3"
    assert pdf.label() == "[1] Acme, p. 3 <file:///srv/contracts/acme.pdf#page=3>"
    web = Citation(n=2, kind="document", title="Report", url="https://dms.example/r.PDF?v=2", page=12)
    assert web.link == "https://dms.example/r.PDF?v=2#page=12"
    for same in (
        Citation(n=3, kind="document", title="Policy", url="https://intranet/policy.docx", page=2),
        Citation(n=4, kind="document", title="No page", url="file:///srv/a.pdf"),
        Citation(n=5, kind="document", title="Has one", url="file:///srv/a.pdf#page=9", page=2),
        Citation(n=6, kind="ledger", title="Ledger", url="ledger://journal_entries?year=2026", rows=("e#1",)),
    ):
        assert same.link == same.url and f"<{same.url}>" in same.label()
