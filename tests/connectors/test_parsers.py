"""parse_file against real PDF/DOCX/HTML/text files written into tmp_path."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_BREAK
from fpdf import FPDF
from pypdf import PdfWriter

from sovra.connectors.parsers import normalize_text, parse_file
from sovra.errors import ParseError


def make_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def test_pdf_gives_one_page_per_pdf_page(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "contract.pdf",
        ["1. Parties\nAcme Office Supplies GmbH", "2. Term\nThe term is 36 months.", "3. Fees\nEUR 10,000 per month."],
    )
    pages = parse_file(path)
    assert [p.number for p in pages] == [1, 2, 3]
    assert "Acme Office Supplies GmbH" in pages[0].text
    assert "36 months" in pages[1].text and "36 months" not in pages[2].text
    assert "EUR 10,000 per month." in pages[2].text


def test_pdf_page_without_text_keeps_the_numbering_of_the_others(tmp_path: Path) -> None:
    pages = parse_file(make_pdf(tmp_path / "gap.pdf", ["first", "", "third"]))
    assert [(p.number, p.text) for p in pages] == [(1, "first"), (3, "third")]


def test_scanned_pdf_without_text_layer_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)  # no OCR engine installed
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")  # ink, but no text: what a scan looks like to us
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(
        ParseError, match=r"scan\.pdf: 1 page\(s\), none with text \(no text layer; OCR not installed\)"
    ) as err:
        parse_file(tmp_path / "scan.pdf")
    assert err.value.hint and "OCR" in err.value.hint


def test_truncated_pdf_is_a_parse_error(tmp_path: Path) -> None:
    data = make_pdf(tmp_path / "ok.pdf", ["some text " * 50, "more"]).read_bytes()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(ParseError, match=r"broken\.pdf: the PDF is corrupt or truncated"):
        parse_file(broken)


def test_garbage_with_pdf_extension_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_bytes(b"this is not a PDF at all\n" * 10)
    with pytest.raises(ParseError, match="corrupt"):
        parse_file(path)


def _encrypt(src: Path, dst: Path, user_password: str) -> Path:
    writer = PdfWriter(clone_from=str(src))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    with dst.open("wb") as f:
        writer.write(f)
    return dst


def test_password_protected_pdf_is_refused(tmp_path: Path) -> None:
    src = make_pdf(tmp_path / "plain.pdf", ["confidential terms"])
    locked = _encrypt(src, tmp_path / "locked.pdf", user_password="s3cret")
    with pytest.raises(ParseError, match="password-protected"):
        parse_file(locked)


def test_pdf_encrypted_with_empty_user_password_opens(tmp_path: Path) -> None:
    # Owner-password-only PDFs (copy/print restrictions) are common and readable by anyone.
    src = make_pdf(tmp_path / "plain.pdf", ["restricted printing only"])
    restricted = _encrypt(src, tmp_path / "restricted.pdf", user_password="")
    assert parse_file(restricted)[0].text == "restricted printing only"


def make_docx(path: Path) -> Path:
    d = docx.Document()
    d.add_heading("Services Agreement", level=1)
    d.add_paragraph("This   agreement is made\tbetween the parties.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Fee", "EUR 5,000"
    table.cell(1, 0).text, table.cell(1, 1).text = "Term", "24 months"
    d.add_heading("Termination", level=2)
    p = d.add_paragraph("Either party may terminate.")
    p.add_run().add_break(WD_BREAK.PAGE)
    p.add_run("Annex A starts here.")
    d.add_paragraph("Annex text.")
    d.add_page_break()
    d.add_paragraph("Signatures")
    d.save(str(path))
    return path


def test_docx_keeps_body_order_headings_tables_and_page_breaks(tmp_path: Path) -> None:
    pages = parse_file(make_docx(tmp_path / "services.docx"))
    assert [p.number for p in pages] == [1, 2, 3]
    assert pages[0].text == (
        "Services Agreement\n\n"
        "This agreement is made between the parties.\n\n"
        "Fee | EUR 5,000\nTerm | 24 months\n\n"
        "Termination\n\n"
        "Either party may terminate."
    )
    assert pages[1].text == "Annex A starts here.\n\nAnnex text."
    assert pages[2].text == "Signatures"


def test_docx_without_page_breaks_is_one_page(tmp_path: Path) -> None:
    d = docx.Document()
    d.add_paragraph("Only paragraph.")
    d.save(str(tmp_path / "one.docx"))
    assert [(p.number, p.text) for p in parse_file(tmp_path / "one.docx")] == [(1, "Only paragraph.")]


def test_docx_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0 legacy word binary")
    with pytest.raises(ParseError, match="not a zip"):
        parse_file(path)


def test_zip_that_is_not_a_docx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "not a word document")
    with pytest.raises(ParseError, match="cannot be read"):
        parse_file(path)


HTML = """<!doctype html>
<html><head><title>Remote Work Policy</title><style>body { color: red }</style>
<script>var secret = "do not index";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/hr">HR</a></nav>
<h1>Remote   Work
   Policy</h1>
<p>Employees may work remotely
   up to <b>3 days</b> per week.</p>
<h2>Equipment</h2>
<ul><li>Laptop</li><li>Headset</li></ul>
<table><tr><th>Grade</th><th>Allowance</th></tr><tr><td>A</td><td>EUR 50</td></tr></table>
<p>Line one<br>Line two</p>
</body></html>"""


def test_html_drops_chrome_and_keeps_blocks_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "policy.html"
    path.write_text(HTML, encoding="utf-8")
    [page] = parse_file(path)
    assert page.number == 1
    assert page.text == (
        "Remote Work Policy\n\n"
        "Employees may work remotely up to 3 days per week.\n\n"
        "Equipment\n\n"
        "Laptop\nHeadset\n\n"
        "Grade | Allowance\nA | EUR 50\n\n"
        "Line one\nLine two"
    )
    assert "secret" not in page.text and "Home" not in page.text and "color" not in page.text


def test_html_title_is_kept_when_the_body_has_no_heading(tmp_path: Path) -> None:
    path = tmp_path / "note.htm"
    path.write_text("<html><head><title>Travel Note</title></head><body><p>Book trains.</p></body></html>")
    assert parse_file(path)[0].text == "Travel Note\n\nBook trains."


def test_cp1252_text_is_decoded_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("Prix: 5 € – café crème".encode("cp1252"))
    with caplog.at_level(logging.WARNING, logger="sovra.connectors.parsers"):
        [page] = parse_file(path)
    assert page.text == "Prix: 5 € – café crème"
    assert "cp1252" in caplog.text


def test_bytes_undefined_in_cp1252_fall_back_to_latin1(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_bytes(b"caf\xe9 \x81")
    assert parse_file(path)[0].text == "café \x81"


def test_markdown_is_read_as_utf8_text_with_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "readme.md"
    path.write_text("\ufeff# Title\n\n\n\nSome    text   here.\n- item one\n", encoding="utf-8")
    assert parse_file(path)[0].text == "# Title\n\nSome text here.\n- item one"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.pdf", b"", "empty"),
        ("empty.txt", b"", "empty"),
        ("sheet.xls", b"\xd0\xcf\x11\xe0", "unsupported"),
        ("sheet.xlsx", b"PK\x03\x04", "not a valid XLSX"),
        ("noext", b"text", "unsupported"),
        ("blank.txt", b"   \n\n\t  \n", "no text"),
    ],
)
def test_unreadable_files_raise_parse_error(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ParseError, match=message):
        parse_file(path)


def test_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 2000)
    with pytest.raises(ParseError, match="over the"):
        parse_file(path, max_bytes=1000)
    assert parse_file(path, max_bytes=5000)[0].text == "x" * 2000


def test_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="cannot be read"):
        parse_file(tmp_path / "gone.pdf")


def test_normalize_text_collapses_spaces_and_keeps_paragraph_breaks() -> None:
    assert normalize_text("  a \t  b \r\n c\n\n\n\n d  \n") == "a b\nc\n\nd"
