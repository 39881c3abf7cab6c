"""OCR of scanned PDF pages (issue 22) with Debian's real tesseract and PDFium, on PDFs written in
the test: the text exists only as pixels of an image. `.ci/run` installs tesseract-ocr with its
French and German data; without it these tests skip with the reason (and the parsers' tests show
the "OCR not installed" path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fpdf import FPDF

from sovra.connectors import ocr
from sovra.connectors.filesystem import FilesystemConnector
from sovra.connectors.parsers import parse_file
from sovra.errors import ParseError
from sovra.index import SearchFilter
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="Debian's tesseract-ocr is not installed")

SCANNED = [
    "Termination fee: EUR 1.250.000,00",
    "Net revenue 2022 | 12,345",
    "Le contrat prend fin le 15 mars 2024.",
]


def _scan(pdf: FPDF, tmp_path: Path, lines: list[str]) -> None:
    """A page that is only an image of ``lines``, as a scanner without OCR writes it."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (1700, 120 + 100 * len(lines)), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=44)
    for n, line in enumerate(lines):
        draw.text((40, 60 + 100 * n), line, fill=0, font=font)
    png = tmp_path / f"scan-{len(pdf.pages)}.png"
    img.save(png)
    pdf.add_page()
    pdf.image(str(png), x=10, y=10, w=190)


def _scanned_pdf(path: Path, tmp_path: Path, lines: list[str] = SCANNED) -> Path:
    pdf = FPDF()
    _scan(pdf, tmp_path, lines)
    pdf.output(str(path))
    return path


def test_a_scanned_page_is_read_by_ocr_with_its_numbers_and_accents(tmp_path: Path) -> None:
    (page,) = parse_file(_scanned_pdf(tmp_path / "scan.pdf", tmp_path))
    assert page.ocr and not page.skipped
    # amounts, decimal commas and French accents survive (fra is installed beside eng)
    assert page.text.splitlines()[:2] == SCANNED[:2]
    assert "Le contrat prend fin le 15 mars 2024." in page.text


def test_a_filing_with_one_scanned_page_is_indexed_whole_and_reported(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Annual filing. The signed amendment on the next page is a scan.")
    _scan(pdf, tmp_path, ["Amendment No. 2: the Heron facility limit is raised to USD 40,000,000."])
    pdf.output(str(folder / "filing.pdf"))
    pages = parse_file(folder / "filing.pdf")
    assert [(p.number, p.ocr) for p in pages] == [(1, False), (2, True)]

    index = EdgeIndex(tmp_path / "q", "c")
    try:
        report = Ingestor(index, embedder, tmp_path / "state.sqlite").run(
            [FilesystemConnector(folder, "docs", default_acl=["group:everyone"])]
        )
        assert (report.added, report.failed, report.skipped_pages) == (1, [], [])
        assert (report.pages, report.ocr_pages) == (2, 1)
        assert "2 pages, 0 tables, 1 OCRed, 0 pages skipped" in report.summary()
        query = "Heron facility limit amendment"
        hits = index.search(
            embedder.embed_query(query), embedder.sparse_query(query), SearchFilter(("group:everyone",)), 5
        )
        # the scanned page is cited by its own page number
        assert [(h.page, "USD 40,000,000" in h.text) for h in hits[:1]] == [(2, True)]
    finally:
        index.close()


def test_ocr_turned_off_or_missing_language_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _scanned_pdf(tmp_path / "scan.pdf", tmp_path)
    monkeypatch.setenv("SOVRA_OCR", "off")
    with pytest.raises(ParseError, match=r"none with text \(no text layer; OCR is off \(SOVRA_OCR=off\)\)"):
        parse_file(path)
    monkeypatch.setenv("SOVRA_OCR", "auto")
    monkeypatch.setenv("SOVRA_OCR_LANGUAGES", "eng+xyz")
    with pytest.raises(ParseError, match=r"OCR language\(s\) xyz not installed \(apt-get install tesseract-ocr-xyz\)"):
        parse_file(path)
    monkeypatch.setenv("SOVRA_OCR_LANGUAGES", "eng")  # a language that is installed: read
    assert parse_file(path)[0].ocr


def test_an_ocr_that_hangs_is_stopped_and_the_page_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in tesseract that never answers: the page is skipped after the limit, the file
    # still fails cleanly (no text anywhere) instead of hanging ingest.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tesseract").write_text(
        '#!/bin/sh\nif [ "$1" = "--list-langs" ]; then printf "List of\\neng\\n"; exit 0; fi\nexec sleep 30\n'
    )
    (fake / "tesseract").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:/usr/bin:/bin")
    monkeypatch.setenv("SOVRA_OCR_TIMEOUT_S", "1")
    ocr._installed_languages.cache_clear()
    with pytest.raises(ParseError, match=r"no text layer; OCR took longer than 1 s \(SOVRA_OCR_TIMEOUT_S\)"):
        parse_file(_scanned_pdf(tmp_path / "scan.pdf", tmp_path))


def test_a_drawing_without_words_is_reported_not_invented(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 150, 200, style="F")
    pdf.output(str(tmp_path / "black.pdf"))
    with pytest.raises(ParseError, match=r"none with text \(no text layer; OCR found no text\)"):
        parse_file(tmp_path / "black.pdf")
