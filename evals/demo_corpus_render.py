"""Deterministic writers for the demo corpus: HTML, DOCX (python-docx) and PDF (fpdf2).

Every writer pins the dates a format would otherwise take from the wall clock, so two runs of
the generator produce byte-identical files and file hashes can serve as fixtures.
"""

from __future__ import annotations

import html
import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import docx
from docx.shared import Pt
from fpdf import FPDF
from fpdf.enums import XPos, YPos

# One instant for every "created"/"modified" stamp inside generated files.
FIXED_STAMP = datetime(2025, 1, 1, 9, 0, 0, tzinfo=UTC)
_ZIP_STAMP = (2025, 1, 1, 9, 0, 0)


@dataclass(frozen=True)
class Section:
    """A titled part of a document. Blocks starting with "- " render as bullet points."""

    heading: str
    blocks: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A simple grid (header row + rows) rendered after the sections of a document."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[float, ...] = field(default=())


@dataclass(frozen=True)
class DocBody:
    """Everything a writer needs: a title, a few lead lines, sections and optional tables."""

    title: str
    lead: tuple[str, ...]
    sections: tuple[Section, ...]
    tables: tuple[Table, ...] = ()
    footer: str = ""


def _bullets_grouped(blocks: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """Group consecutive bullet blocks so HTML gets one <ul> per run of bullets."""
    out: list[tuple[str, list[str]]] = []
    for block in blocks:
        if block.startswith("- "):
            if out and out[-1][0] == "ul":
                out[-1][1].append(block[2:])
            else:
                out.append(("ul", [block[2:]]))
        else:
            out.append(("p", [block]))
    return out


def write_html(path: Path, body: DocBody, meta: dict[str, str]) -> None:
    esc = html.escape
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{esc(body.title)}</title>",
        *(f'<meta name="{esc(k)}" content="{esc(v)}">' for k, v in meta.items()),
        "</head>",
        "<body>",
        '<nav class="ms-breadcrumb">Nordbank AG Intranet &gt; Policies</nav>',
        "<main>",
        f"<h1>{esc(body.title)}</h1>",
        *(f'<p class="lead">{esc(line)}</p>' for line in body.lead),
    ]
    for section in body.sections:
        lines.append(f"<h2>{esc(section.heading)}</h2>")
        for kind, items in _bullets_grouped(section.blocks):
            if kind == "ul":
                lines.append("<ul>")
                lines.extend(f"<li>{esc(item)}</li>" for item in items)
                lines.append("</ul>")
            else:
                lines.append(f"<p>{esc(items[0])}</p>")
    for table in body.tables:
        lines.append(f"<h2>{esc(table.title)}</h2>")
        lines.append("<table>")
        lines.append("<tr>" + "".join(f"<th>{esc(c)}</th>" for c in table.header) + "</tr>")
        for row in table.rows:
            lines.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
        lines.append("</table>")
    lines.append("</main>")
    if body.footer:
        lines.append(f"<footer>{esc(body.footer)}</footer>")
    lines += ["</body>", "</html>", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _pin_zip_timestamps(raw: bytes) -> bytes:
    """Rewrite a zip with fixed entry timestamps (python-docx stamps entries with the clock)."""
    src = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    # Level 1: the parts are small XML; the default level only cost time.
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_STAMP)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def write_docx(path: Path, body: DocBody, author: str = "Nordbank AG") -> None:
    document = docx.Document()
    props = document.core_properties
    props.title = body.title
    props.author = author
    props.last_modified_by = author
    props.created = FIXED_STAMP.replace(tzinfo=None)
    props.modified = FIXED_STAMP.replace(tzinfo=None)
    props.last_printed = FIXED_STAMP.replace(tzinfo=None)
    props.revision = 1
    document.styles["Normal"].font.size = Pt(10.5)

    # python-docx's public style setter rescans every style in the template per paragraph (most
    # of the generation time); writing the style id into the paragraph XML is equivalent.
    ids = {name: document.styles[name].style_id for name in ("Title", "Heading 1", "List Bullet")}

    def para(text: str, style: str | None = None) -> None:
        paragraph = document.add_paragraph(text)
        if style:
            paragraph._p.style = ids[style]

    para(body.title, "Title")
    for line in body.lead:
        para(line)
    for section in body.sections:
        para(section.heading, "Heading 1")
        for block in section.blocks:
            if block.startswith("- "):
                para(block[2:], "List Bullet")
            else:
                para(block)
    for table in body.tables:
        para(table.title, "Heading 1")
        grid = document.add_table(rows=1, cols=len(table.header))
        grid.style = "Table Grid"
        for cell, text in zip(grid.rows[0].cells, table.header, strict=True):
            cell.text = text
        for row in table.rows:
            for cell, text in zip(grid.add_row().cells, row, strict=True):
                cell.text = text
    if body.footer:
        para(body.footer)
    buf = io.BytesIO()
    document.save(buf)
    path.write_bytes(_pin_zip_timestamps(buf.getvalue()))


class _ContractPDF(FPDF):
    def __init__(self, running_title: str) -> None:
        super().__init__(format="A4")
        self._running_title = running_title

    def header(self) -> None:
        if self.page_no() == 1:  # the first page carries the full title already
            return
        self.set_font("Helvetica", "I", 8)
        self.cell(0, 6, self._running_title, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="R")
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "I", 8)
        self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")


def latin1(text: str) -> str:
    """Core PDF fonts only know latin-1; fail loudly in the generator rather than in a test."""
    text.encode("latin-1")
    return text


def _paragraph(pdf: FPDF, text: str, height: float, indent: float = 0.0) -> None:
    """Word-wrap ``text`` into cells.

    fpdf2's multi_cell re-measures the growing line for every character, which made PDF
    generation the slowest part of the corpus; core fonts have no kerning, so summing word
    widths is exact and linear.
    """
    width = pdf.w - pdf.l_margin - pdf.r_margin - indent
    font = pdf.current_font
    assert font is not None, "set a font before writing text"
    # Core fonts key widths by character (fpdf2's annotation says int); units of 1/1000 em.
    char_widths, scale = cast(dict[str, float], font.cw), pdf.font_size / 1000
    space = char_widths[" "] * scale
    line: list[str] = []
    used = 0.0
    for word in latin1(text).split(" "):
        word_width = sum(char_widths[ch] for ch in word) * scale
        if line and used + space + word_width > width:
            pdf.set_x(pdf.l_margin + indent)
            pdf.cell(width, height, " ".join(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            line, used = [], 0.0
        used += word_width + (space if line else 0.0)
        line.append(word)
    pdf.set_x(pdf.l_margin + indent)
    pdf.cell(width, height, " ".join(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def write_pdf(path: Path, body: DocBody, author: str = "Nordbank AG") -> None:
    pdf = _ContractPDF(latin1(body.title))
    pdf.set_creation_date(FIXED_STAMP)
    pdf.set_title(latin1(body.title))
    pdf.set_author(author)
    pdf.set_creator("Nordbank AG Contract Management")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    _paragraph(pdf, body.title, 8)
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 10)
    for line in body.lead:
        _paragraph(pdf, line, 5.5)
    for section in body.sections:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        _paragraph(pdf, section.heading, 7)
        pdf.set_font("Helvetica", "", 10)
        for block in section.blocks:
            if block.startswith("- "):
                _paragraph(pdf, "- " + block[2:], 5.5, indent=5.0)
            else:
                _paragraph(pdf, block, 5.5)
            pdf.ln(1.5)
    for table in body.tables:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 12)
        _paragraph(pdf, table.title, 7)
        pdf.ln(2)
        usable = pdf.w - pdf.l_margin - pdf.r_margin
        widths = table.widths or tuple(usable / len(table.header) for _ in table.header)
        pdf.set_font("Helvetica", "B", 9)
        for width, text in zip(widths, table.header, strict=True):
            pdf.cell(width, 6, latin1(text), border=1)
        pdf.ln(6)
        pdf.set_font("Helvetica", "", 9)
        for row in table.rows:
            for width, text in zip(widths, row, strict=True):
                pdf.cell(width, 6, latin1(text), border=1)
            pdf.ln(6)
    if body.footer:
        pdf.ln(4)
        pdf.set_font("Helvetica", "I", 9)
        _paragraph(pdf, body.footer, 5)
    pdf.output(str(path))
