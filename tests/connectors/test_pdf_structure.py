"""PDF tables kept as tables, and bad PDFs (issue 22): real files written with fpdf2/pypdf in the test.

Each bad file is ingested next to a good one: the bad one says what it skipped, the good one is
indexed all the same.
"""

from __future__ import annotations

import logging
import tracemalloc
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfWriter

from sovra.chunking import chunk_pages
from sovra.connectors.filesystem import FilesystemConnector
from sovra.connectors.parsers import parse_file
from sovra.connectors.pdf_tables import rebuild_tables
from sovra.errors import ParseError
from sovra.index import SearchFilter
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor

Row = tuple[str, list[str]]


def table_pdf(path: Path, pages: list[list[Row]]) -> Path:
    """Each page: ("text", [line]) paragraphs and ("row", [label, value, ...]) table rows."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for page in pages:
        pdf.add_page()
        for kind, cells in page:
            if kind == "text":
                pdf.multi_cell(0, 6, cells[0], new_x="LMARGIN", new_y="NEXT")
            else:
                pdf.cell(90, 6, cells[0])
                for cell in cells[1:]:
                    pdf.cell(35, 6, cell, align="R")
                pdf.ln(6)
    pdf.output(str(path))
    return path


STATEMENT: list[Row] = [
    ("text", ["Example Corp reported higher revenue for the year, as the statement below shows."]),
    ("text", ["Consolidated Statements of Income"]),
    ("text", ["(In millions)"]),
    ("row", ["", "2022", "2021"]),
    ("row", ["Net revenue", "$ 12,345", "$ 11,000"]),
    ("row", ["Cost of revenue", "7,001", "6,502"]),
    ("row", ["Operating income", "(1,234)", "980"]),
]


def test_a_table_keeps_row_and_column_labels_on_every_value(tmp_path: Path) -> None:
    pages = parse_file(table_pdf(tmp_path / "income.pdf", [STATEMENT]))
    (page,) = pages
    assert "Net revenue | 2022: $12,345 | 2021: $11,000" in page.text
    assert "Operating income | 2022: (1,234) | 2021: 980" in page.text
    (table,) = page.tables
    assert table.columns == ("2022", "2021")
    assert table.caption == "Consolidated Statements of Income (In millions)"  # not the prose above it
    assert page.text[table.start : table.end].startswith("Period | 2022 | 2021\nNet revenue")
    # The prose around the table is left as it was.
    assert page.text.startswith("Example Corp reported higher revenue")
    chunks = chunk_pages("income", pages, size=1200, overlap=150)
    assert len(chunks) == 1 and chunks[0].context == table.caption


def test_pypdf_cell_per_line_output_becomes_one_row_per_line() -> None:
    # What pypdf gives for many filings: every cell on a line of its own, "$" apart.
    raw = "\n".join(
        [
            *("Consolidated Balance Sheet", "(Dollars in millions)", "2018", "2017", "Assets", "Cash", "$", "2,853"),
            *("$", "3,053", "Accounts receivable — net of allowances of $95 and $103", "5,020", "4,911"),
            *("Inventories", "Finished goods", "2,120", "1,915", "The notes are an integral part of this statement."),
        ]
    )
    text, (table,) = rebuild_tables(raw)
    assert text.split("\n")[:8] == [
        "Consolidated Balance Sheet",
        "",
        "(Dollars in millions) | 2018 | 2017",
        "Assets",
        "Cash | 2018: 2,853 | 2017: 3,053",
        "Accounts receivable — net of allowances of $95 and $103 | 2018: 5,020 | 2017: 4,911",
        "Inventories",
        "Finished goods | 2018: 2,120 | 2017: 1,915",
    ]
    assert table.caption == "Consolidated Balance Sheet"
    assert text.endswith("The notes are an integral part of this statement.")


def test_dates_under_spanning_headings_name_each_column() -> None:
    raw = "\n".join(
        [
            "Condensed Statements of Earnings",
            "Three Months Ended Six Months Ended",
            "July 29, 2023 July 30, 2022 July 29, 2023 July 30, 2022",  # "29," is a day, not a value
            "Revenue $9,583 $10,329 $19,050 $20,976",
            "Other income (expense):",
            "Gain on sale of subsidiary, net — 21",
            "Net earnings $274 $306 $518 $647",
        ]
    )
    text, (table,) = rebuild_tables(raw)
    assert (
        table.columns[1] == "Three Months Ended July 30, 2022" and table.columns[2] == "Six Months Ended July 29, 2023"
    )
    lines = text[table.start : table.end].split("\n")
    assert lines[1] == (
        "Revenue | Three Months Ended July 29, 2023: $9,583 | Three Months Ended July 30, 2022: $10,329"
        " | Six Months Ended July 29, 2023: $19,050 | Six Months Ended July 30, 2022: $20,976"
    )
    assert lines[3] == "Gain on sale of subsidiary, net | — | 21"  # another width: no column labels guessed
    assert lines[4].startswith("Net earnings | Three Months Ended July 29, 2023: $274")


def test_prose_with_numbers_is_not_a_table() -> None:
    raw = "In 2022 revenue rose 12% to $1,234 million.\nWe hired 300 people in 2021 and 2022.\nNo table here."
    assert rebuild_tables(raw) == (raw, [])


def test_a_long_table_is_cut_between_rows_and_each_part_knows_its_header(tmp_path: Path) -> None:
    rows: list[Row] = [("row", [f"Item {i}", f"{i},{i:03d}", f"{i + 1},{i:03d}"]) for i in range(40)]
    pages = parse_file(table_pdf(tmp_path / "long.pdf", [STATEMENT + rows]))
    chunks = chunk_pages("long", pages, size=400, overlap=40)
    table_chunks = [c for c in chunks if "| 2022:" in c.text]
    assert len(table_chunks) >= 3
    for c in table_chunks:
        for line in c.text.split("\n"):
            if "| 2022:" in line:  # every row whole: label, both columns
                assert line.split(" | ")[0] and line.count(" | ") == 2, line
        assert "Consolidated Statements of Income" in c.context
    assert all("Period | 2022 | 2021" in c.context for c in table_chunks[1:])


def test_a_table_running_onto_the_next_page_gets_its_header_again(tmp_path: Path) -> None:
    rest: list[Row] = [("row", [f"Segment {i} revenue", f"{i},1{i}0", f"{i},0{i}5"]) for i in range(1, 6)]
    rest.append(("text", ["Segment revenue is reported by region."]))
    first, second = parse_file(table_pdf(tmp_path / "span.pdf", [STATEMENT, rest]))
    assert "Net revenue | 2022: $12,345" in first.text
    assert second.text.startswith("Period | 2022 | 2021 (continued)\nSegment 1 revenue | 2022: 1,110 | 2021: 1,015")
    (table,) = second.tables
    assert table.caption == first.tables[0].caption
    assert second.text.endswith("Segment revenue is reported by region.")


# --- bad input: each next to a good file in one ingest ----------------------------------------


def _ingest(folder: Path, tmp_path: Path, embedder):  # type: ignore[no-untyped-def]
    index = EdgeIndex(tmp_path / "q", "c")
    ingestor = Ingestor(index, embedder, tmp_path / "state.sqlite")
    try:
        report = ingestor.run([FilesystemConnector(folder, "docs", default_acl=["group:everyone"])])
        query = "net revenue 2022"
        hits = index.search(
            embedder.embed_query(query), embedder.sparse_query(query), SearchFilter(("group:everyone",)), 10
        )
        return report, {h.doc_id.split(":", 1)[-1] for h in hits}
    finally:
        index.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    table_pdf(d / "good.pdf", [STATEMENT])
    return d


def test_encrypted_pdf_is_skipped_with_a_message_and_the_rest_is_indexed(folder: Path, tmp_path: Path, embedder):  # type: ignore[no-untyped-def]
    writer = PdfWriter(clone_from=str(table_pdf(tmp_path / "plain.pdf", [STATEMENT])))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="AES-128")
    with (folder / "locked.pdf").open("wb") as f:
        writer.write(f)
    report, found = _ingest(folder, tmp_path, embedder)
    assert report.added == 1 and "good.pdf" in found and "locked.pdf" not in found
    ((doc, why),) = report.failed
    assert doc.endswith("locked.pdf") and "locked.pdf: the PDF is password-protected; skipped" in why


def test_pdf_with_a_broken_xref_is_repaired(folder: Path, tmp_path: Path, embedder):  # type: ignore[no-untyped-def]
    data = table_pdf(tmp_path / "ok.pdf", [STATEMENT]).read_bytes()
    xref = data.index(b"\nxref\n") + 1
    table = data[xref : data.index(b"trailer", xref)]
    wrong = b"\n".join(
        b"0000000001" + line[10:] if line.rstrip().endswith(b" n") else line for line in table.split(b"\n")
    )
    broken = data[:xref] + wrong + data[xref + len(table) :]  # every object offset wrong
    broken = broken.replace(b"startxref\n" + str(xref).encode(), b"startxref\n" + str(xref - 37).encode())
    assert wrong != table and broken.count(b"startxref\n" + str(xref - 37).encode()) == 1
    assert broken != data
    (folder / "broken.pdf").write_bytes(broken)
    (page,) = parse_file(folder / "broken.pdf")
    assert "Net revenue | 2022: $12,345" in page.text
    report, found = _ingest(folder, tmp_path, embedder)
    assert (report.added, report.failed) == (2, [])
    assert {"good.pdf", "broken.pdf"} <= found


def _image_only_page(pdf: FPDF, tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(img).text((20, 80), "Net revenue 2022 12,345", fill=0)  # text as pixels: a scan
    png = tmp_path / "scan.png"
    img.save(png)
    pdf.add_page()
    pdf.image(str(png), x=10, y=10, w=180)


def test_image_only_pdf_without_ocr_is_reported_as_skipped(
    folder: Path, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("shutil.which", lambda name: None)  # no tesseract on this machine
    scan = FPDF()
    _image_only_page(scan, tmp_path)
    scan.output(str(folder / "scan.pdf"))
    with pytest.raises(
        ParseError, match=r"scan\.pdf: 1 page\(s\), none with text \(no text layer; OCR not installed\)"
    ):
        parse_file(folder / "scan.pdf")
    # A filing with one scanned page: its text pages are indexed, the scanned one reported.
    mixed = FPDF()
    mixed.set_font("Helvetica", size=10)
    mixed.add_page()
    mixed.multi_cell(0, 6, "Mixed filing: the exhibit on the next page is a scan.")
    _image_only_page(mixed, tmp_path)
    mixed.output(str(folder / "mixed.pdf"))
    pages = parse_file(folder / "mixed.pdf")
    assert [(p.number, p.skipped) for p in pages] == [(1, ""), (2, "no text layer; OCR not installed")]
    report, found = _ingest(folder, tmp_path, embedder)
    assert report.added == 2 and "good.pdf" in found
    assert [why for _, why in report.failed] == [
        "scan.pdf: 1 page(s), none with text (no text layer; OCR not installed); skipped"
    ]
    assert [(d.split(":", 1)[-1], why) for d, why in report.skipped_pages] == [
        ("mixed.pdf", "page 2: no text layer; OCR not installed")
    ]
    assert (report.pages, report.tables, report.ocr_pages) == (3, 1, 0)
    assert "3 pages, 1 tables, 0 OCRed, 1 pages skipped" in report.summary()


@pytest.mark.slow
def test_a_500_page_pdf_is_read_with_progress_and_bounded_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for n in range(1, 501):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Page {n} of the annual filing. " + "Risk factors and results of operations. " * 40)
    path = tmp_path / "filing.pdf"
    pdf.output(str(path))
    del pdf
    caplog.set_level(logging.INFO, logger="sovra.connectors.parsers")
    tracemalloc.start()
    try:
        pages = parse_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [p.number for p in pages] == list(range(1, 501))
    assert pages[499].text.startswith("Page 500 of the annual filing.")
    assert [r.getMessage() for r in caplog.records if "read" in r.getMessage()] == [
        f"filing.pdf: page {n} of 500 read" for n in range(100, 501, 100)
    ]
    text_mb = sum(len(p.text) for p in pages) / 1e6
    assert peak < 150e6, f"peak {peak / 1e6:.0f} MB for {text_mb:.1f} MB of text"
