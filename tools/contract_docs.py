"""find_contract_documents: a contract and the documents related to it, read in full, as the user.

"Related" means: the same counterparty (sidecar ``counterparty_id``), or a document that names the
contract ("relates to contract C-2025-002"). Term sheets, heads of terms and amendments are
found this way. Every document comes back with all of its chunks (page and character offsets
kept) so an extractor can read whole clauses and cite them. Access is checked inside the index
with the caller's principals, exactly as for ``search_documents``: a document the user may not
read is never returned, not even its title.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from sovra.errors import InputError
from sovra.index import SearchFilter
from sovra.search_scope import narrow
from sovra.tools.base import ToolContext, tool
from sovra.tools.ledger import counterparty_match_score

CONTRACT_ID = re.compile(r"\b(?:C|TS|AM)-\d{4}-\d{3}\b", re.I)
_RELATES = re.compile(r"relates\s+to\s+contract\s+((?:C|AM)-\d{4}-\d{3})", re.I)
_MAX_CHUNKS_PER_DOC = 1500  # about 500 pages; a longer document is read in part, and says so

Role = Literal["contract", "term_sheet", "amendment"]


class ContractDocsArgs(BaseModel):
    query: str = Field(description="A contract id (C-2025-002), a counterparty name or words from a title.")
    source: str = Field(default="contracts", description="The document source that holds contracts.")


class DocChunk(BaseModel):
    chunk_id: str
    page: int
    char_start: int
    char_end: int
    text: str


class ContractDocument(BaseModel):
    doc_id: str
    title: str
    url: str
    doc_type: str
    role: Role
    contract_id: str | None = None
    related_contract_id: str | None = None  # the contract a term sheet or amendment refers to
    counterparty: str | None = None
    counterparty_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)  # the sidecar, as ingested
    chunks: list[DocChunk] = Field(default_factory=list)
    truncated: bool = False  # longer than the reader's limit: only the first chunks were read

    def pages(self) -> dict[int, str]:
        """Each page's text rebuilt from its (overlapping) chunks at their offsets."""
        out: dict[int, list[str]] = {}
        for c in sorted(self.chunks, key=lambda c: (c.page, c.char_start)):
            buf = out.setdefault(c.page, [])
            if len(buf) < c.char_end:
                buf.extend(" " * (c.char_end - len(buf)))
            buf[c.char_start : c.char_end] = list(c.text)
        return {p: "".join(chars) for p, chars in out.items()}

    def chunk_at(self, page: int, offset: int) -> DocChunk | None:
        for c in self.chunks:
            if c.page == page and c.char_start <= offset < c.char_end:
                return c
        return None


class ContractDocsResult(BaseModel):
    query: str
    contract_id: str | None = None  # the main contract, when one was identified
    counterparty: str | None = None
    documents: list[ContractDocument] = Field(default_factory=list)  # main contract first
    ambiguous: list[str] = Field(default_factory=list)  # counterparties the query matches equally well

    @property
    def found(self) -> bool:
        return bool(self.documents)


def _role(meta: dict[str, Any], title: str, text: str) -> Role:
    cid = str(meta.get("contract_id") or "")
    if cid.upper().startswith("AM-") or "amendment" in title.lower():
        return "amendment"
    if (
        cid.upper().startswith("TS-")
        or re.search(
            r"term[\s_-]?sheet|heads[\s_-]of[\s_-]terms|summary[\s_-]of[\s_-](?:principal[\s_-])?terms", title, re.I
        )
        or re.search(r"^\W*(?:term\s+sheet|heads\s+of\s+terms)\b", text, re.I)
        or _RELATES.search(text)
    ):
        return "term_sheet"
    return "contract"


def _search(ctx: ToolContext, query: str, flt: SearchFilter, limit: int, mode: str = "hybrid") -> list[Any]:
    svc = ctx.services
    flt = narrow(flt)  # the filters the asking person chose for the run
    return list(
        svc.index.search(svc.embedder.embed_query(query), svc.embedder.sparse_query(query), flt, limit=limit, mode=mode)
    )


def _whole(ctx: ToolContext, hit: Any, source: str) -> ContractDocument:
    """Every chunk of one document the user may read (the ACL term stays in the filter)."""
    flt = SearchFilter(principals=tuple(ctx.user.principals), sources=(source,), doc_ids=(hit.doc_id,))
    total = ctx.services.index.count(flt)
    n = min(total, _MAX_CHUNKS_PER_DOC)
    hits = _search(ctx, hit.title, flt, max(n, 1), mode="dense") if n else []
    chunks = sorted(
        {h.chunk_id: DocChunk(chunk_id=h.chunk_id, page=h.page, char_start=h.char_start, char_end=h.char_end,
                              text=h.text) for h in hits}.values(),
        key=lambda c: (c.page, c.char_start),
    )  # fmt: skip
    meta = dict(hit.metadata or {})
    head = " ".join(c.text for c in chunks[:2])
    related = _RELATES.search(head)
    return ContractDocument(
        doc_id=hit.doc_id,
        title=hit.title,
        url=hit.url,
        doc_type=hit.doc_type,
        role=_role(meta, hit.title, head),
        contract_id=meta.get("contract_id"),
        related_contract_id=related.group(1).upper() if related else None,
        counterparty=meta.get("counterparty"),
        counterparty_id=meta.get("counterparty_id"),
        metadata=meta,
        chunks=chunks,
        truncated=total > n,
    )


def _name_score(query: str, hit: Any, use_title: bool) -> tuple[int, int, int] | None:
    meta = hit.metadata or {}
    name = hit.title if use_title else str(meta.get("counterparty") or "")
    return counterparty_match_score(query.casefold(), str(meta.get("counterparty_id") or "-"), name) if name else None


@tool(read_only=True)
def find_contract_documents(args: ContractDocsArgs, ctx: ToolContext) -> ContractDocsResult:
    """Find a contract by id, counterparty or title, with its related documents (term sheets,
    heads of terms, amendments), each with all of its text, page and character offsets."""
    query = " ".join(args.query.split())
    if not query:
        raise InputError("say which contract: a contract id such as C-2025-002 or a counterparty name")
    flt = SearchFilter(principals=tuple(ctx.user.principals), sources=(args.source,))
    hits = _search(ctx, query, flt, 50)
    first: dict[str, Any] = {}
    for h in hits:
        first.setdefault(h.doc_id, h)
    ids = {m.upper() for m in CONTRACT_ID.findall(query)}
    anchors: list[Any] = []
    if ids:
        anchors = [h for h in first.values() if str((h.metadata or {}).get("contract_id", "")).upper() in ids]
    for use_title in (False, True):  # the counterparty's name first; a title only if no name matches
        if anchors:
            break
        scored = [(s, h) for h in first.values() if (s := _name_score(query, h, use_title)) is not None]
        if scored:
            best = max(s for s, _ in scored)
            anchors = [h for s, h in scored if s == best]
    if not anchors and not any((h.metadata or {}).get("counterparty_id") for h in first.values()):
        return _by_parties(ctx, query, list(first.values()), args.source)
    if not anchors:
        return ContractDocsResult(query=query)
    cp_ids = {(a.metadata or {}).get("counterparty_id") for a in anchors} - {None}
    if len(cp_ids) > 1:
        names = sorted({str((a.metadata or {}).get("counterparty")) for a in anchors})
        return ContractDocsResult(query=query, ambiguous=names)
    counterparty = next((str((a.metadata or {}).get("counterparty")) for a in anchors), None)
    # A second search by the counterparty's name finds related documents the first one ranked low.
    if counterparty:
        for h in _search(ctx, counterparty, flt, 50):
            first.setdefault(h.doc_id, h)
    group = {h.doc_id: h for h in first.values() if (h.metadata or {}).get("counterparty_id") in cp_ids}
    group.update({a.doc_id: a for a in anchors})
    docs = [_whole(ctx, h, args.source) for h in group.values()]
    anchor_ids = {d.contract_id for d in docs if d.doc_id in {a.doc_id for a in anchors}}
    main = next((d.contract_id for d in docs if d.role == "contract" and d.contract_id in anchor_ids), None)
    if main is None:  # asked for a term sheet: its contract is the main one
        main = next((d.related_contract_id for d in docs if d.related_contract_id), None)
    if main is None:
        main = next((d.contract_id for d in docs if d.role == "contract"), None)
    docs.sort(key=lambda d: (d.contract_id != main, d.role != "contract", d.contract_id or "", d.doc_id))
    return ContractDocsResult(query=query, contract_id=main, counterparty=counterparty, documents=docs)


# --- documents without business metadata: name the agreement by its parties and title ---------------

_CANDIDATES = 8  # documents read in full to decide which agreement a question names


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]{3,}", text.casefold()) if w not in {"the", "and", "agreement", "inc"}}


def _parties_of(doc: ContractDocument) -> list[str]:
    from sovra.tools.terms import extract_fields

    f = extract_fields(doc.pages(), only=("parties",))["parties"]
    return [str(n[0]) for n in f.value or []] if f.found else []


def _mentioned(query: str, names: list[str]) -> int:
    """How many of a document's parties the question names (legal forms and punctuation aside)."""
    from sovra.tools.terms.parties import party_key

    q = " " + " ".join(re.sub(r"[^\w\s]", " ", query.casefold()).split()) + " "
    return sum(1 for n in names if (k := party_key(n)) and f" {k} " in q)


def _by_parties(ctx: ToolContext, query: str, hits: list[Any], source: str) -> ContractDocsResult:
    """The agreement a question names by its parties or title, and the term sheets and amendments
    about the same agreement (same parties), for documents ingested without a metadata sidecar."""
    from sovra.tools.terms.parties import same_party

    docs = [_whole(ctx, h, source) for h in hits[:_CANDIDATES]]
    if not docs:
        return ContractDocsResult(query=query)
    qwords = _words(query)
    scored: list[tuple[float, ContractDocument, list[str]]] = []
    titles: dict[str, float] = {}
    for d in docs:
        names = _parties_of(d)
        title = _words(d.title.replace("_", " "))
        titles[d.doc_id] = len(qwords & title) / max(len(title), 1)
        scored.append((float(_mentioned(query, names)), d, names))
    contracts = [x for x in scored if x[1].role == "contract"]
    best_party = max((sc for sc, _, _ in contracts), default=0.0)
    if best_party > 0:
        # The parties decide; two contracts between the same parties are both candidates.
        tied = [x for x in contracts if x[0] == best_party]
    else:
        best_title = max((titles[d.doc_id] for _, d, _ in contracts), default=0.0)
        tied = [x for x in contracts if best_title > 0 and titles[x[1].doc_id] >= best_title - 1e-9]
    if not tied:
        # A term sheet or amendment the question names, with no contract of its own: say so.
        others = sorted((x for x in scored if x[1].role != "contract" and x[0] > 0), key=lambda x: -x[0])
        return ContractDocsResult(query=query, documents=[others[0][1]] if others else [])
    if len(tied) > 1:
        return ContractDocsResult(query=query, ambiguous=[d.title for _, d, _ in tied])
    _, main, main_names = tied[0]

    def related(names: list[str], d: ContractDocument) -> bool:
        """A term sheet or amendment about the same deal: it names the same parties as the contract
        (all of them; one may be missing when there are three or more), or the parties the question
        names, or its title is the contract's title with a suffix ("<title>.term-sheet")."""
        if d.doc_id == main.doc_id or d.role == "contract":
            return False
        if names and main_names:
            shared = sum(1 for n in names if any(same_party(n, m) for m in main_names))
            return shared >= (len(names) - 1 if len(names) >= 3 else len(names))
        if names and _mentioned(query, names) >= (min(best_party, len(names)) if best_party > 0 else len(names)):
            return True
        stem = " ".join(_words(main.title.replace("_", " ")))
        return bool(stem) and " ".join(_words(d.title.replace("_", " "))).startswith(stem)

    seen = {d.doc_id for d in docs}
    flt = SearchFilter(principals=tuple(ctx.user.principals), sources=(source,))
    again = " ".join([*main_names, main.title.replace("_", " ")]) if main_names else query
    more = [h for h in _search(ctx, again, flt, 30) if h.doc_id not in seen]
    for h in list({h.doc_id: h for h in more}.values())[:_CANDIDATES]:
        d = _whole(ctx, h, source)
        scored.append((0.0, d, _parties_of(d)))
    group = [main] + [d for _, d, names in scored if related(names, d)]
    return ContractDocsResult(query=query, counterparty=None, documents=group)
