"""Bad input: zip bombs, spreadsheets, odd encodings, fetched bytes, and a fuzz of every parser."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sovra.connectors import parsers
from sovra.connectors.parsers import parse_bytes, parse_file
from sovra.errors import ParseError


def _docx_bytes(text: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_docx_zip_bomb_is_refused_before_it_is_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"\0" * (40 * 1024 * 1024))  # 40 MB of zeros -> ~40 KB
    assert path.stat().st_size < 200_000
    with pytest.raises(ParseError, match="zip bomb"):
        parse_file(path)
    # The absolute cap as well, whatever the ratio.
    monkeypatch.setattr(parsers, "MAX_UNZIPPED_BYTES", 1024)
    ok = tmp_path / "ok.docx"
    ok.write_bytes(_docx_bytes("A normal clause."))
    with pytest.raises(ParseError, match="would unpack"):
        parse_file(ok)


def test_normal_docx_passes_the_zip_check(tmp_path: Path) -> None:
    path = tmp_path / "ok.docx"
    path.write_bytes(_docx_bytes("Termination requires ninety days notice."))
    assert "ninety days" in parse_file(path)[0].text


def test_xlsx_gives_a_page_per_sheet(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Fees"
    sheet.append(["Service", "Fee EUR"])
    sheet.append(["Hosting", 1200.0])
    book.create_sheet("Empty")
    other = book.create_sheet("Limits")
    other.append(["Hotel London", 250])
    path = tmp_path / "fees.xlsx"
    book.save(path)
    pages = parse_file(path)
    assert [p.number for p in pages] == [1, 3]  # the empty sheet is left out, numbering kept
    assert pages[0].text == "Sheet: Fees\nService | Fee EUR\nHosting | 1200"
    assert "Hotel London | 250" in pages[1].text


def test_corrupt_xlsx_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("xl/workbook.xml", "<not-a-workbook")
    with pytest.raises(ParseError, match="XLSX"):
        parse_file(path)


def test_csv_pages_repeat_the_header_and_sniff_the_delimiter(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(parsers, "CSV_ROWS_PER_PAGE", 2)
    path = tmp_path / "payments.csv"
    path.write_text("counterparty;amount\nAcme;100\nBlauwal;200\nHelix;300\n", encoding="cp1252")
    pages = parse_file(path)
    assert [p.text for p in pages] == [
        "counterparty | amount\nAcme | 100\nBlauwal | 200",
        "counterparty | amount\nHelix | 300",
    ]


def test_utf16_text_and_binary_posing_as_text(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes("Überweisung an Acme".encode("utf-16"))
    assert parse_file(path)[0].text == "Überweisung an Acme"
    binary = tmp_path / "image.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ParseError, match="binary data"):
        parse_file(binary)


def test_parse_bytes_names_the_item_and_caps_the_size() -> None:
    assert parse_bytes(b"# Title\n\nBody.", "dir/notes.md")[0].text == "# Title\n\nBody."
    with pytest.raises(ParseError, match=r"report\.pdf: the file is"):
        parse_bytes(b"x" * 2000, "report.pdf", max_bytes=1000)
    with pytest.raises(ParseError, match="empty"):
        parse_bytes(b"", "../../etc/passwd.txt")


def test_default_size_cap_is_100_mb() -> None:
    assert parsers.DEFAULT_MAX_BYTES == 100 * 1024 * 1024


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.binary(max_size=512).map(lambda b: b"%PDF-1.4\n" + b),
        st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b),
    ),
    suffix=st.sampled_from([".pdf", ".docx", ".xlsx", ".csv", ".html", ".md", ".txt"]),
)
def test_fuzz_any_bytes_give_pages_or_a_parse_error(data: bytes, suffix: str) -> None:
    try:
        pages = parse_bytes(data, f"fuzz{suffix}")
    except ParseError as exc:
        assert "fuzz" in exc.message  # every error names the item
        return
    assert pages and all(p.text and p.number >= 1 for p in pages)
