"""The document viewer: a cited document opened at the cited page with the passage highlighted, and
ledger citations as a table of the cited rows.

Nothing here trusts the citation: the viewer is given a chunk id (by a chip, or by anyone who edits
the page's address, ``?view=<chunk id>``) and reads the document's chunks from the index as the
viewing user, with the same ACL filter every search applies. A user who may not read the document
gets the same plain refusal as for a document that does not exist. The file behind a PDF is read
only from the URL the index holds for a document the user may read.

PDF pages are drawn from the PDF's own text layer (pypdf's text positions and the fonts' widths)
as an SVG page with the passage's text boxes highlighted; images and vector drawings of the page
are not drawn (no PDF rasteriser is in the lock). DOCX, HTML, Markdown and text documents show the
text around the passage.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import streamlit as st

from sovra.audit import SYSTEM_RUN
from sovra.errors import SovraError
from sovra.identity import User
from sovra.index.base import Hit, SearchFilter
from sovra.runtime import Citation, Runtime
from sovra.ui.chat import identity, session

log = logging.getLogger(__name__)

NOT_AVAILABLE = "This document is not available to you."
LEDGER_REFUSED = "These ledger rows are not available to you: the ledger is open to the finance group only."
CONTEXT_CHUNKS = 1  # chunks shown before and after the cited one in a text document
MAX_ID_CHARS = 300
VIEW_PARAM = "view"  # ?view=<chunk id>&at=<page>: the viewer as a page of its own


class ViewerAccessError(SovraError):
    """The viewing user may not read what was asked for (or it does not exist: the same answer)."""


# ---------------------------------------------------------------------------------------------
# The access check and the document's chunks


@dataclass(frozen=True)
class DocumentView:
    doc_id: str
    title: str
    url: str
    doc_type: str
    chunks: tuple[Hit, ...]  # every chunk the user may read, in document order
    cited: Hit
    spans: tuple[tuple[int, int], ...]  # character spans of ``cited.text`` to highlight

    @property
    def page(self) -> int:
        return self.cited.page

    @property
    def local_path(self) -> Path | None:
        """The source file when the document is a local file that is still there."""
        parts = urlsplit(self.url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parts.path))
        return path if path.is_file() else None

    @property
    def is_pdf(self) -> bool:
        return urlsplit(self.url).path.lower().endswith(".pdf")

    def file_url(self, page: int | None = None) -> str:
        """The file URL, at ``page`` for a PDF (``#page=N`` is what PDF readers open at)."""
        return self.url + (f"#page={page}" if page is not None and self.is_pdf else "")


def doc_id_of(chunk_id: str) -> str:
    return chunk_id.rsplit("#", 1)[0]


def readable_chunks(rt: Runtime, user: User, doc_id: str) -> list[Hit]:
    """The document's chunks that ``user`` may read, ACL applied inside the index (as in search)."""
    from sovra.errors import IndexMissingError

    flt = SearchFilter(principals=tuple(user.principals), doc_ids=(doc_id,))
    try:
        hits = rt.services.index.chunks(flt)
    except IndexMissingError:
        return []
    unique = {h.chunk_id: h for h in hits}  # a chunk may be indexed in more than one variant
    return sorted(unique.values(), key=lambda h: (h.page, h.char_start, h.chunk_id))


def open_document(
    rt: Runtime, user: User, chunk_id: str, citation: Citation | None = None, answer_text: str = ""
) -> DocumentView:
    """The document a chunk id points at, as ``user`` may read it. Raises ViewerAccessError, with
    the same words whether the document is missing or withheld; every opening and refusal is
    audited (ids only, never content)."""
    chunk_id = chunk_id.strip()[:MAX_ID_CHARS]  # an address anyone can edit: bounded before it is logged
    doc_id = doc_id_of(chunk_id)
    chunks = readable_chunks(rt, user, doc_id) if doc_id else []
    audit = rt.services.audit
    if not chunks:
        audit.append("viewer.refused", {"chunk_id": chunk_id}, run_id=SYSTEM_RUN, user_id=user.id)
        raise ViewerAccessError(NOT_AVAILABLE)
    cited = next((h for h in chunks if h.chunk_id == chunk_id), None)
    if cited is None:  # re-ingested since: the document is readable, the passage is gone
        raise ViewerAccessError(
            "This passage is no longer in the document (it changed since the answer was given).",
            hint="ask the question again for a fresh citation",
        )
    if citation is not None and citation.chunk_id == chunk_id:
        spans = session.passage_spans(cited.text, citation, answer_text)
    else:
        spans = []
    audit.append("viewer.open", {"chunk_id": chunk_id, "page": cited.page}, run_id=SYSTEM_RUN, user_id=user.id)
    return DocumentView(
        doc_id=doc_id,
        title=cited.title,
        url=cited.url,
        doc_type=cited.doc_type,
        chunks=tuple(chunks),
        cited=cited,
        spans=tuple(spans) or ((0, len(cited.text)),),  # a bare chunk id: the whole chunk
    )


def text_around(view: DocumentView, context: int = CONTEXT_CHUNKS) -> tuple[str, list[tuple[int, int]], bool, bool]:
    """The page text from ``context`` chunks before to ``context`` after the cited one (chunks of
    the same page overlap; their offsets put them back together), the highlight spans in it, and
    whether text comes before and after."""
    same = [h for h in view.chunks if h.page == view.cited.page]
    i = next(k for k, h in enumerate(same) if h.chunk_id == view.cited.chunk_id)
    part = same[max(0, i - context) : i + context + 1]
    start = min(h.char_start for h in part)
    end = max(h.char_end for h in part)
    buf = [" "] * (end - start)
    for h in part:
        body = h.text[: h.char_end - h.char_start]
        buf[h.char_start - start : h.char_start - start + len(body)] = body
    shift = view.cited.char_start - start
    spans = [(s + shift, e + shift) for s, e in view.spans]
    before = i - context > 0 or any(h.page < view.cited.page for h in view.chunks)
    after = i + context + 1 < len(same) or any(h.page > view.cited.page for h in view.chunks)
    return "".join(buf), spans, before, after


# ---------------------------------------------------------------------------------------------
# PDF pages from the text layer


@dataclass(frozen=True)
class TextBox:
    """One run of text on a page, in page units with the origin at the top left."""

    text: str
    x: float
    y: float  # baseline
    size: float
    advances: tuple[float, ...]  # each character's width
    font: str = ""

    @property
    def width(self) -> float:
        return sum(self.advances)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float


@dataclass
class PdfPage:
    number: int
    count: int
    width: float
    height: float
    boxes: list[TextBox] = field(default_factory=list)


def _widths(font: Any) -> tuple[dict[int, float], float]:
    """Glyph widths (per 1000 em) of a PDF font: its /Widths, else the standard-14 metrics."""
    default = 500.0
    if font is None:
        return {}, default
    try:
        first = int(font.get("/FirstChar", 0))
        widths = font.get("/Widths")
        if widths is not None:
            return {first + i: float(w) for i, w in enumerate(widths)}, default
    except (TypeError, ValueError):
        pass
    from fpdf.fonts import CORE_FONTS_CHARWIDTHS

    base = str(font.get("/BaseFont", "")).lstrip("/").lower()
    family = next((f for f in ("helvetica", "times", "courier") if f in base), "helvetica")
    style = ("B" if "bold" in base else "") + ("I" if "italic" in base or "oblique" in base else "")
    table = CORE_FONTS_CHARWIDTHS.get(family + style) or CORE_FONTS_CHARWIDTHS["helvetica"]
    return {ord(k) if isinstance(k, str) else int(k): float(v) for k, v in table.items()}, default


def read_pdf_page(path: Path, number: int) -> PdfPage:
    """Page ``number`` (1-based) of a PDF as text boxes. Raises SovraError for a page that is not
    there or a file pypdf cannot read."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            reader.decrypt("")
        count = len(reader.pages)
        if not 1 <= number <= count:
            raise SovraError(f"the document has {count} page(s), not a page {number}")
        page = reader.pages[number - 1]
        box = page.mediabox
        out = PdfPage(number, count, float(box.width), float(box.height))
        x0, top = float(box.left), float(box.top)
        cache: dict[int, tuple[dict[int, float], float]] = {}

        def visit(text: str, cm: Sequence[float], tm: Sequence[float], font: Any, size: float) -> None:
            text = text.replace("\n", "")
            if not text.strip():
                return
            # Text space -> user space: tm then cm (PDF 32000 9.4.4).
            a, b, c, d, e, f = tm
            A, B, C, D, E, F = cm
            x = e * A + f * C + E
            y = e * B + f * D + F
            wide = ((a * A + b * C) ** 2 + (a * B + b * D) ** 2) ** 0.5 or 1.0  # horizontal scale
            tall = ((c * A + d * C) ** 2 + (c * B + d * D) ** 2) ** 0.5 or 1.0  # vertical scale
            table, default = cache.setdefault(id(font), _widths(font))
            adv = tuple(table.get(ord(ch), default) * size * wide / 1000 for ch in text)
            em = size * tall
            name = str(font.get("/BaseFont", "")) if font is not None else ""
            out.boxes.append(TextBox(text, x - x0, top - y, em, adv, name))

        page.extract_text(visitor_text=visit)
    except SovraError:
        raise
    except Exception as exc:  # pypdf surfaces a damaged file as many exception types
        raise SovraError(f"the PDF page cannot be drawn ({type(exc).__name__})") from exc
    return out


_SPACE = re.compile(r"\s+")


def highlight_rects(boxes: Sequence[TextBox], needles: Iterable[str]) -> list[Rect]:
    """Rectangles over the text of ``boxes`` that each needle covers, whitespace-insensitively (a
    passage runs over several lines, and a PDF's text runs carry no line-end spaces)."""
    flat: list[str] = []
    where: list[tuple[int, int]] = []  # (box, character) of each non-space character
    for b, box in enumerate(boxes):
        for k, ch in enumerate(box.text):
            if not ch.isspace():
                flat.append(ch)
                where.append((b, k))
    hay = "".join(flat)
    covered: dict[int, tuple[int, int]] = {}  # box -> first and last character covered
    for needle in needles:
        want = _SPACE.sub("", needle)
        if not want:
            continue
        pos = hay.find(want)
        if pos < 0:
            continue
        for b, k in where[pos : pos + len(want)]:
            s, e = covered.get(b, (k, k))
            covered[b] = (min(s, k), max(e, k))
    rects = []
    for b, (s, e) in sorted(covered.items()):
        box = boxes[b]
        left = box.x + sum(box.advances[:s])
        rects.append(Rect(left, box.y - box.size * 0.8, sum(box.advances[s : e + 1]), box.size * 1.05))
    return rects


def _font_attrs(font: str) -> str:
    name = font.lower()
    family = "Times New Roman, serif" if "times" in name else "Courier New, monospace" if "courier" in name else ""
    attrs = f' font-family="{family or "Helvetica, Arial, sans-serif"}"'
    if "bold" in name:
        attrs += ' font-weight="bold"'
    if "italic" in name or "oblique" in name:
        attrs += ' font-style="italic"'
    return attrs


def page_svg(page: PdfPage, rects: Sequence[Rect] = ()) -> str:
    """The page as an SVG image: white paper, highlights under the text, each run drawn at its
    position and stretched to the width its font gives it (so highlight and text line up)."""
    parts = [
        f'<svg class="sovra-pdf-page" data-page="{page.number}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {page.width:.1f} {page.height:.1f}" width="100%" '
        'style="background:#fff;border:1px solid #bbb" '
        f'role="img" aria-label="page {page.number} of {page.count}">'
    ]
    for r in rects:
        parts.append(
            f'<rect class="sovra-highlight" x="{r.x:.1f}" y="{r.y:.1f}" width="{r.w:.1f}" height="{r.h:.1f}" '
            'fill="#ffd54f" fill-opacity="0.6" rx="1.5"/>'
        )
    for b in page.boxes:
        parts.append(
            f'<text x="{b.x:.1f}" y="{b.y:.1f}" font-size="{b.size:.1f}" fill="#111"{_font_attrs(b.font)} '
            f'textLength="{b.width:.1f}" lengthAdjust="spacingAndGlyphs" xml:space="preserve">'
            f"{html.escape(b.text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def page_html(svg: str, number: int, count: int, marks: int) -> str:
    """The drawn page as an image (the chat's HTML sanitiser drops inline SVG; an image it keeps)."""
    data = base64.b64encode(svg.encode()).decode()
    alt = f"Page {number} of {count}" + (f", {marks} highlighted line(s)" if marks else "")
    return (
        f'<div class="sovra-viewer" data-testid="sovra-viewer" data-page="{number}" data-highlights="{marks}">'
        f'<img src="data:image/svg+xml;base64,{data}" alt="{alt}" style="width:100%;max-width:820px"/></div>'
    )


def cited_page_svg(view: DocumentView, path: Path, number: int) -> tuple[str, int, int]:
    """(SVG, highlight count, page count) for page ``number``; highlights on the cited page only."""
    page = read_pdf_page(path, number)
    rects: list[Rect] = []
    if number == view.page:
        rects = highlight_rects(page.boxes, [view.cited.text[s:e] for s, e in view.spans])
    return page_svg(page, rects), len(rects), page.count


# ---------------------------------------------------------------------------------------------
# Ledger citations


def ledger_rows(rt: Runtime, user: User, citation: Citation) -> list[dict[str, Any]]:
    """The ledger rows a citation names, read again as ``user`` through the ledger tool's own
    permission and allow-listed query (the citation's row keys only select among its result)."""
    from sovra.tools.ledger import LedgerQuery, query_ledger
    from sovra.tools.ledger_tool import ledger_lookup

    if not ledger_lookup.allowed(user):
        rt.services.audit.append("viewer.refused", {"ledger": citation.url}, run_id=SYSTEM_RUN, user_id=user.id)
        raise ViewerAccessError(LEDGER_REFUSED)
    db_url = rt.services.ledger_url
    parts = urlsplit(citation.url)
    query = parse_qs(parts.query)
    cp, year = (query.get("counterparty") or [""])[0], (query.get("year") or [""])[0]
    if db_url is None or parts.scheme != "ledger" or not cp or not year.isdigit():
        raise SovraError("The ledger rows of this citation cannot be shown (no ledger, or not a ledger query).")
    y = int(year)
    end = min(dt.date(y, 12, 31), rt.services.settings.today)
    start = dt.date(y, 1, 1)
    q = LedgerQuery(kind="payments_to_counterparty", counterparty=cp, date_from=start, date_to=end, limit=500)
    res = query_ledger(db_url, q)
    wanted = set(citation.rows)
    rt.services.audit.append("viewer.ledger", {"url": citation.url}, run_id=SYSTEM_RUN, user_id=user.id)
    return [
        {
            "date": r.entry_date.isoformat(),
            "amount": f"{r.amount:,.2f} {r.currency or ''}".strip(),
            "counterparty": r.counterparty or "",
            "reference": r.reference or "",
            "description": r.description,
            "account": r.account_code,
            "entry": r.key,
        }
        for r in res.rows
        if f"{r.table}#{r.key}" in wanted
    ]


# ---------------------------------------------------------------------------------------------
# Drawing


def _marked(text: str, spans: Sequence[tuple[int, int]]) -> str:
    out, pos = [], 0
    for s, e in spans:
        out.append(html.escape(text[pos:s]))
        out.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _page_key(chunk_id: str) -> str:
    return f"viewer_page_{chunk_id}"


def _go(key: str, number: int) -> None:
    st.session_state[key] = number


def show_document(sh: Any, user: User, chunk_id: str, citation: Citation | None = None, answer_text: str = "") -> None:
    """Draw the viewer for ``chunk_id`` as ``user`` (inside a dialog or on the viewer page)."""
    from sovra.ui.chat.views import _error, md

    try:
        with sh.lock, identity.acting_as(user):
            view = open_document(sh.runtime, user, chunk_id, citation, answer_text)
    except SovraError as exc:
        _error(exc)
        if citation is not None and citation.quote:
            # The user's own run: its answer already showed them this quote (never a forged address).
            st.caption("What the run recorded from this source when it answered:")
            st.html(f"<blockquote>{html.escape(citation.quote)}</blockquote>")
        return
    st.markdown(f"**{md(view.title)}** · page {view.page}")
    path = view.local_path
    if view.is_pdf and path is not None:
        key = _page_key(chunk_id)
        number = int(st.session_state.get(key, view.page))
        try:
            svg, marks, count = cited_page_svg(view, path, number)
        except SovraError as exc:
            _error(exc)
            return
        left, mid, right = st.columns([1, 2, 1])
        # Callbacks run before the rerun they cause: the page drawn is the one just picked, and the
        # rerun stays inside the dialog (a full rerun would close it).
        left.button(
            "Previous page",
            key=f"{key}-prev",
            disabled=number <= 1,
            icon=":material/chevron_left:",
            on_click=_go,
            args=(key, number - 1),
        )
        mid.caption(f"Page {number} of {count}" + (" · the cited passage is highlighted" if marks else ""))
        right.button(
            "Next page",
            key=f"{key}-next",
            disabled=number >= count,
            icon=":material/chevron_right:",
            on_click=_go,
            args=(key, number + 1),
        )
        if number != view.page:
            st.button(f"Back to the cited page ({view.page})", key=f"{key}-cited", on_click=_go, args=(key, view.page))
        st.html(page_html(svg, number, count, marks))
        if number == view.page and not marks:
            st.caption("The passage could not be placed on the drawn page; it reads:")
            st.html(f"<blockquote>{_marked(view.cited.text, view.spans)}</blockquote>")
    else:
        text, spans, before, after = text_around(view)
        st.html(
            '<div class="sovra-viewer sovra-passage" data-testid="sovra-viewer" style="white-space:pre-wrap;'
            'line-height:1.5;border-left:3px solid #bbb;padding:.4em .8em">'
            + ("… " if before else "")
            + _marked(text, spans)
            + (" …" if after else "")
            + "</div>"
        )
    if path is not None:
        page = int(st.session_state.get(_page_key(chunk_id), view.page))
        st.download_button(
            "Download the document",
            path.read_bytes(),
            file_name=path.name,
            key=f"dl-{chunk_id}",
            icon=":material/download:",
        )
        # Browsers do not follow file: links from a web page: the address is there to copy.
        st.caption(f"File address (opens at this page in a PDF reader): `{view.file_url(page)}`")
    elif view.url.startswith(("http://", "https://")):
        st.link_button("Open the document", view.url)


def show_ledger(sh: Any, user: User, citation: Citation) -> None:
    from sovra.ui.chat.views import _error, md, md_table

    try:
        with sh.lock:
            rows = ledger_rows(sh.runtime, user, citation)
    except SovraError as exc:
        _error(exc)
        return
    st.markdown(f"**{md(citation.title)}**")
    st.caption(md(citation.quote))
    if not rows:
        st.info("None of the cited rows is in the ledger any more.")
        return
    st.markdown(md_table(rows))
    st.caption(f"{len(rows)} cited row(s) of the ledger")


@st.dialog("Cited passage", width="large")
def _document_dialog(sh: Any, user: User, c: Citation, answer_text: str) -> None:
    show_document(sh, user, c.chunk_id or "", c, answer_text)


@st.dialog("Cited ledger rows", width="large")
def _ledger_dialog(sh: Any, user: User, c: Citation) -> None:
    show_ledger(sh, user, c)


def source_dialog(sh: Any, user: User, c: Citation, answer_text: str) -> None:
    """What a citation chip opens: the document at the cited page, or the cited ledger rows."""
    if c.kind == "ledger":
        _ledger_dialog(sh, user, c)
    else:
        _document_dialog(sh, user, c, answer_text)


def viewer_page(sh: Any, user: User) -> None:
    """``?view=<chunk id>``: the viewer on a page of its own, with every check of the dialog."""
    chunk_id = str(st.query_params.get(VIEW_PARAM) or "")
    if st.button("Back to the chat", key="viewer_back", icon=":material/arrow_back:"):
        del st.query_params[VIEW_PARAM]
        st.rerun()
    show_document(sh, user, chunk_id)
