"""Turn a source file into citable pages: PDF, DOCX, XLSX, CSV, HTML, Markdown and plain text.

Every failure a person can act on (corrupt, encrypted, scanned, empty, too large, a zip bomb,
binary data, unsupported) becomes a ``ParseError`` whose message names the file, so ingest can
report it and move on. Memory per file is bounded: files over ``max_bytes`` are refused before
they are read, and zip containers (DOCX, XLSX) whose members would inflate past
``MAX_UNZIPPED_BYTES`` or ``MAX_ZIP_RATIO`` are refused before they are opened.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePath

from sovra.documents import Page
from sovra.errors import ParseError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024  # a DOCX/XLSX whose parts inflate past this is refused
MAX_ZIP_RATIO = 200  # ... and so is one past this compression ratio (text XML compresses ~10-30x)
CSV_ROWS_PER_PAGE = 100  # a CSV "page" is a block of rows, each page repeating the header
PDF_EXTENSIONS = frozenset({".pdf"})
DOCX_EXTENSIONS = frozenset({".docx"})
XLSX_EXTENSIONS = frozenset({".xlsx", ".xlsm"})
CSV_EXTENSIONS = frozenset({".csv", ".tsv"})
HTML_EXTENSIONS = frozenset({".html", ".htm"})
TEXT_EXTENSIONS = frozenset({".md", ".markdown", ".txt"})
SUPPORTED_EXTENSIONS = (
    PDF_EXTENSIONS | DOCX_EXTENSIONS | XLSX_EXTENSIONS | CSV_EXTENSIONS | HTML_EXTENSIONS | TEXT_EXTENSIONS
)

# Unicode line/paragraph separators mark structural breaks while the HTML source's own
# formatting whitespace is being collapsed; they are turned into newlines at the end.
_LINE = "\u2028"
_PARA = "\u2029"
_INLINE_SPACE = re.compile(r"[^\S\n\u2028\u2029]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def is_supported(path: PurePath | str) -> bool:
    return PurePath(path).suffix.lower() in SUPPORTED_EXTENSIONS


def parse_bytes(data: bytes, name: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Page]:
    """``parse_file`` for content fetched over the network; ``name`` (a file name) picks the format
    and names the item in errors."""
    if len(data) > max_bytes:
        raise ParseError(
            f"{name}: the file is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit",
            hint="split the file or raise the size limit of the connector",
        )
    safe = re.sub(r"[^\w.() -]", "_", PurePath(name.replace("\\", "/")).name)[-150:] or "item"
    with tempfile.TemporaryDirectory(prefix="sovra-parse-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        return parse_file(path, max_bytes=max_bytes)


def parse_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Page]:
    """Read ``path`` into pages numbered from 1 (PDF: one per page; other formats: one page,
    DOCX: split at explicit page breaks). Pages without text are left out, except PDF pages that
    could not be read: those stay, empty, with the reason in ``Page.skipped``.

    Raises ``ParseError`` for anything that cannot yield text.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise ParseError(
            f"{path.name}: unsupported file type {suffix or '(no extension)'!r}",
            hint="supported: " + ", ".join(sorted(SUPPORTED_EXTENSIONS)),
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise ParseError(f"{path.name}: the file is empty (0 bytes)")
    if size > max_bytes:
        raise ParseError(
            f"{path.name}: the file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit",
            hint="split the file or raise the size limit of the connector",
        )
    if suffix in PDF_EXTENSIONS:
        pages = _parse_pdf(path)
    elif suffix in DOCX_EXTENSIONS:
        pages = _parse_docx(path)
    elif suffix in XLSX_EXTENSIONS:
        pages = _parse_xlsx(path)
    elif suffix in CSV_EXTENSIONS:
        pages = _parse_csv(path, "\t" if suffix == ".tsv" else None)
    elif suffix in HTML_EXTENSIONS:
        pages = [Page(1, _parse_html(_read_text(path)))]
    else:
        pages = [Page(1, normalize_text(_read_text(path)))]
    pages = [p for p in pages if p.text or p.skipped]
    if not any(p.text for p in pages):
        raise ParseError(f"{path.name}: the file contains no text")
    return pages


def normalize_text(text: str) -> str:
    """Collapse runs of spaces/tabs, trim lines, and keep at most one blank line between
    paragraphs, so chunk offsets do not depend on the source's layout whitespace."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    lines = [_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# --- plain text ---------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ParseError(f"{path.name}: the UTF-16 text is malformed ({exc.reason})") from exc
    if b"\x00" in data[:8192]:
        # NUL bytes never occur in text in an 8-bit encoding: this is a binary file misnamed.
        raise ParseError(f"{path.name}: binary data, not text", hint="check the file's extension matches its content")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # cp1252 is what Windows tools write; latin-1 decodes any byte, so it is the last resort.
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        log.warning("%s is not valid UTF-8; decoded it as %s", path.name, encoding)
        return text
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


# --- PDF ----------------------------------------------------------------------------------


PDF_PROGRESS_PAGES = 100  # a long PDF logs its progress every this many pages
NO_TEXT_LAYER = "no text layer; OCR not installed"  # the start of every such reason (connectors.ocr)


_INK = re.compile(rb"(?:^|\s)(?:Do|f\*?|F|S|s|B\*?|b\*?|sh|BI)(?=\s|$)")


def _has_ink(page: object) -> bool:
    """Whether a page without text still draws something (a scanned image, paths): then text is
    missing, not absent. A blank page (a separator) is not worth a report."""
    try:
        contents = page.get("/Contents")  # type: ignore[attr-defined]
        if contents is None:
            return False
        obj = contents.get_object()
        streams = obj if isinstance(obj, list) else [obj]
        return any(_INK.search(s.get_object().get_data()) for s in streams)
    except Exception:  # unreadable content: say it is missing rather than silently drop the page
        return True


def _parse_pdf(path: Path) -> list[Page]:
    """One page per PDF page, tables rebuilt one row per line (``pdf_tables``). A page that cannot
    be read, or has no text layer, is kept empty with the reason in ``Page.skipped``; the others are
    indexed. pypdf repairs a broken cross-reference table by scanning the file (non-strict mode).
    Pages are read one at a time; only their text is kept."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    from sovra.connectors import ocr
    from sovra.connectors.pdf_tables import rebuild_tables

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty user password (only to restrict
            # printing/copying); those open fine. A real password we cannot know.
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # pypdf raises several types, e.g. missing crypto backend
                raise ParseError(
                    f"{path.name}: the PDF is encrypted and cannot be opened ({exc}); skipped",
                    hint="store an unencrypted copy in the source",
                ) from exc
            if not opened:
                raise ParseError(
                    f"{path.name}: the PDF is password-protected; skipped",
                    hint="store an unencrypted copy in the source",
                )
        total = len(reader.pages)
    except ParseError:
        raise
    except FileNotDecryptedError as exc:
        raise ParseError(f"{path.name}: the PDF is password-protected; skipped") from exc
    except (PdfReadError, Exception) as exc:  # pypdf surfaces corruption as many exception types
        raise ParseError(
            f"{path.name}: the PDF is corrupt or truncated ({type(exc).__name__}: {exc})",
            hint="re-export or re-download the file",
        ) from exc
    if not total:
        raise ParseError(f"{path.name}: the PDF has no pages")
    pages: list[Page] = []
    carry = None
    reader_ocr: ocr.PdfOcr | None = None
    engine: ocr.OcrEngine | str | None = None  # looked up at the first page without text
    try:
        for number in range(1, total + 1):
            try:
                page = reader.pages[number - 1]
                raw = page.extract_text() or ""
            except Exception as exc:  # one damaged page: keep the others
                pages.append(Page(number, "", skipped=f"cannot be read ({type(exc).__name__}: {exc})"))
                carry = None
                continue
            text = normalize_text(raw)
            read_by_ocr = False
            if not text:
                if not _has_ink(page):
                    carry = None
                    continue  # a blank separator page: nothing is missing
                if engine is None:
                    engine = ocr.engine()
                if isinstance(engine, str):
                    pages.append(Page(number, "", skipped=engine))
                    carry = None
                    continue
                reader_ocr = reader_ocr or ocr.PdfOcr(path, engine)
                try:
                    text = normalize_text(reader_ocr.page_text(number))
                except ocr.OcrError as exc:
                    pages.append(Page(number, "", skipped=f"no text layer; {exc}"))
                    carry = None
                    continue
                if not text:
                    pages.append(Page(number, "", skipped="no text layer; OCR found no text"))
                    carry = None
                    continue
                read_by_ocr = True
            text, tables = rebuild_tables(text, carry)
            pages.append(Page(number, text, tuple(tables), ocr=read_by_ocr))
            # A table that ends its page may go on at the top of the next one.
            carry = tables[-1] if tables and len(text) - tables[-1].end < 200 else None
            if total >= 2 * PDF_PROGRESS_PAGES and number % PDF_PROGRESS_PAGES == 0:
                log.info("%s: page %d of %d read", path.name, number, total)
    finally:
        if reader_ocr is not None:
            reader_ocr.close()
    if not any(p.text for p in pages):
        reasons = sorted({p.skipped for p in pages}) or ["blank pages"]
        raise ParseError(
            f"{path.name}: {total} page(s), none with text ({'; '.join(reasons)}); skipped",
            hint="install an OCR engine (Debian: tesseract-ocr and tesseract-ocr-LANG) so Sovra reads scanned pages, "
            "or store a copy with a text layer (for example from ocrmypdf)",
        )
    return pages


# --- DOCX ---------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _check_zip(path: Path, kind: str, hint: str) -> None:
    """Refuse a zip container that is not one, or that would inflate past the limits. The sizes
    come from the central directory; a member that lies about its size fails its CRC on reading."""
    if not zipfile.is_zipfile(path):
        raise ParseError(f"{path.name}: not a valid {kind} file (it is not a zip archive)", hint=hint)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ParseError(f"{path.name}: the {kind} file is a corrupt zip archive ({exc})") from exc
    unzipped = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if unzipped > MAX_UNZIPPED_BYTES or (unzipped > 10 * 1024 * 1024 and unzipped / packed > MAX_ZIP_RATIO):
        raise ParseError(
            f"{path.name}: the {kind} file would unpack to {unzipped / 1e6:.0f} MB "
            f"(ratio {unzipped / packed:.0f}:1): refused as a possible zip bomb",
            hint="open and re-save the file; embedded media can be removed",
        )


def _parse_docx(path: Path) -> list[Page]:
    import docx

    _check_zip(path, "DOCX", "old .doc files must be converted to .docx")
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises KeyError, PackageNotFoundError, lxml errors
        raise ParseError(
            f"{path.name}: the DOCX file cannot be read ({type(exc).__name__}: {exc})",
            hint="open and re-save it in Word or LibreOffice",
        ) from exc

    pages: list[list[str]] = [[]]
    for kind, block in _docx_blocks(document.element.body):
        if kind == "page_break":
            pages.append([])
        elif block:
            pages[-1].append(block)
    return [Page(n, "\n\n".join(blocks)) for n, blocks in enumerate(pages, start=1)]


def _docx_blocks(body: object) -> Iterator[tuple[str, str]]:
    """Yield ("text", block) and ("page_break", "") in body order. Tables become one block
    with a line per row and cells separated by " | "."""
    for child in body.iterchildren():  # type: ignore[attr-defined]
        if child.tag == f"{_W}p":
            yield from _docx_paragraph(child)
        elif child.tag == f"{_W}tbl":
            rows = []
            for tr in child.iterchildren(f"{_W}tr"):
                cells = [
                    _docx_inline(" ".join(_docx_text(p) for p in tc.iter(f"{_W}p")))
                    for tc in tr.iterchildren(f"{_W}tc")
                ]
                if any(cells):
                    rows.append(" | ".join(cells))
            yield "text", "\n".join(rows)
        elif child.tag == f"{_W}sdt":  # content controls wrap ordinary paragraphs/tables
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                yield from _docx_blocks(content)


def _docx_paragraph(p: object) -> Iterator[tuple[str, str]]:
    ppr = p.find(f"{_W}pPr")  # type: ignore[attr-defined]
    if ppr is not None and ppr.find(f"{_W}pageBreakBefore") is not None:
        yield "page_break", ""
    parts: list[str] = []
    for el in p.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"):  # type: ignore[attr-defined]
        if el.tag == f"{_W}t":
            parts.append(el.text or "")
        elif el.tag == f"{_W}tab":
            parts.append(" ")
        elif el.get(f"{_W}type") == "page":
            yield "text", _docx_inline("".join(parts))
            yield "page_break", ""
            parts = []
        else:
            parts.append("\n")
    yield "text", _docx_inline("".join(parts))


def _docx_text(p: object) -> str:
    return "".join(
        el.text or "" if el.tag == f"{_W}t" else " "
        for el in p.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr")  # type: ignore[attr-defined]
    )


def _docx_inline(text: str) -> str:
    return "\n".join(line for line in normalize_text(text).split("\n") if line)


# --- HTML ---------------------------------------------------------------------------------

_DROP_TAGS = ("script", "style", "nav", "noscript", "template", "svg", "iframe", "head")
_PARAGRAPH_TAGS = (
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "div", "section", "article", "main", "header",
    "footer", "aside", "table", "ul", "ol", "dl", "blockquote", "pre", "figure", "form", "hr",
)  # fmt: skip
_LINE_TAGS = ("li", "tr", "dt", "dd", "caption", "figcaption")


def _parse_html(markup: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text().split()) if title_tag else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all("br"):
        tag.replace_with(_LINE)
    for tag in soup.find_all(("td", "th")):
        tag.insert_after(" | ")
    for tag in soup.find_all(_LINE_TAGS):
        tag.insert_before(_LINE)
        tag.insert_after(_LINE)
    for tag in soup.find_all(_PARAGRAPH_TAGS):
        tag.insert_before(_PARA)
        tag.insert_after(_PARA)
    raw = soup.get_text()
    raw = _INLINE_SPACE.sub(" ", raw.replace("\n", " "))
    paragraphs = []
    for para in raw.split(_PARA):
        lines = [line.strip().removesuffix("|").strip() for line in para.split(_LINE)]
        text = "\n".join(line for line in lines if line)
        if text:
            paragraphs.append(text)
    # The <title> gives the page a name even when the body has no heading.
    if title and (not paragraphs or paragraphs[0].split("\n")[0] != title):
        paragraphs.insert(0, title)
    return "\n\n".join(paragraphs)


# --- spreadsheets ---------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def _parse_xlsx(path: Path) -> list[Page]:
    """One page per worksheet: the sheet name, then a line per non-empty row, cells joined by " | "."""
    import openpyxl

    _check_zip(path, "XLSX", "old .xls files must be converted to .xlsx")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, InvalidFileException, lxml errors
        raise ParseError(
            f"{path.name}: the XLSX file cannot be read ({type(exc).__name__}: {exc})",
            hint="open and re-save it in Excel or LibreOffice",
        ) from exc
    pages = []
    try:
        for number, sheet in enumerate(book.worksheets, start=1):
            lines = [f"Sheet: {sheet.title}"]
            for row in sheet.iter_rows(values_only=True):
                cells = [_cell(v) for v in row]
                while cells and not cells[-1]:
                    cells.pop()
                if any(cells):
                    lines.append(" | ".join(cells))
            pages.append(Page(number, "\n".join(lines) if len(lines) > 1 else ""))
    except Exception as exc:
        raise ParseError(f"{path.name}: the XLSX file is corrupt ({type(exc).__name__}: {exc})") from exc
    finally:
        book.close()
    return pages


def _parse_csv(path: Path, delimiter: str | None) -> list[Page]:
    """Blocks of ``CSV_ROWS_PER_PAGE`` rows, each page starting with the header row, so a cited
    "page" leads a reader to the rows and every chunk knows its column names."""
    text = _read_text(path)
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        rows = [[_cell(c) for c in row] for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
    except csv.Error as exc:
        raise ParseError(f"{path.name}: malformed CSV ({exc})") from exc
    rows = [r for r in rows if any(r)]
    if not rows:
        return []
    header, body = rows[0], rows[1:] or [[]]
    pages = []
    for number, start in enumerate(range(0, len(body), CSV_ROWS_PER_PAGE), start=1):
        block = [header, *body[start : start + CSV_ROWS_PER_PAGE]]
        pages.append(Page(number, "\n".join(" | ".join(r) for r in block if r)))
    return pages
