"""Reading what the index holds without a query, as the asking user: one cited passage, one document,
the list of documents. The ACL term filters inside Qdrant exactly as in a search, and a passage the user
may not read is answered like one that does not exist, so the answer never tells whether it exists."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sovra.errors import InputError
from sovra.index import SearchFilter
from sovra.tools.base import ToolContext, tool

_ID = r"^[^\x00-\x1f]{1,512}$"
MAX_DOCUMENTS = 5000


class PassageArgs(BaseModel):
    chunk_id: str = Field(pattern=_ID, description="The chunk id of a search hit or a citation (doc id#...).")


class Passage(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    url: str
    source: str
    page: int
    char_start: int
    char_end: int
    text: str


class DocumentArgs(BaseModel):
    doc_id: str = Field(pattern=_ID, description="The document's id (as listed, or the part of a chunk id before #).")


class Document(BaseModel):
    doc_id: str
    title: str
    url: str
    source: str
    doc_type: str
    text: str
    passages: int


class DocumentInfo(BaseModel):
    doc_id: str
    title: str
    url: str
    source: str
    doc_type: str
    passages: int


class DocumentsArgs(BaseModel):
    sources: list[str] = Field(default_factory=list, max_length=20, description="Only these sources (empty: all).")


class DocumentList(BaseModel):
    documents: list[DocumentInfo]
    truncated: bool = False


def _not_yours(what: str) -> InputError:
    return InputError(f"no {what} among the documents you may read", hint="search first; use an id it returned")


@tool(read_only=True)
def read_passage(args: PassageArgs, ctx: ToolContext) -> Passage:
    """Read one passage (a cited chunk) by its chunk id, if the asking user may read its document."""
    doc_id = args.chunk_id.rsplit("#", 1)[0]
    flt = SearchFilter(principals=tuple(ctx.user.principals), doc_ids=(doc_id,))
    hit = next((h for h in ctx.services.index.chunks(flt) if h.chunk_id == args.chunk_id), None)
    if hit is None:
        raise _not_yours(f"passage {args.chunk_id!r}")
    return Passage(**{k: getattr(hit, k) for k in Passage.model_fields})


@tool(read_only=True)
def read_document(args: DocumentArgs, ctx: ToolContext) -> Document:
    """Read a whole document (its indexed text, passage by passage), if the asking user may read it."""
    hits = ctx.services.index.chunks(SearchFilter(principals=tuple(ctx.user.principals), doc_ids=(args.doc_id,)))
    if not hits:
        raise _not_yours(f"document {args.doc_id!r}")
    first = hits[0]
    return Document(
        doc_id=first.doc_id,
        title=first.title,
        url=first.url,
        source=first.source,
        doc_type=first.doc_type,
        text="\n\n".join(h.text for h in hits),
        passages=len(hits),
    )


@tool(read_only=True)
def list_documents(args: DocumentsArgs, ctx: ToolContext) -> DocumentList:
    """List the documents the asking user may read (id, title, source, link)."""
    flt = SearchFilter(principals=tuple(ctx.user.principals), sources=tuple(args.sources))
    docs: dict[str, DocumentInfo] = {}
    for h in ctx.services.index.chunks(flt, fields=["doc_type"]):
        d = docs.get(h.doc_id)
        if d is None:
            docs[h.doc_id] = DocumentInfo(
                doc_id=h.doc_id, title=h.title, url=h.url, source=h.source, doc_type=h.doc_type, passages=1
            )
        else:
            d.passages += 1
    listed = sorted(docs.values(), key=lambda d: (d.title.casefold(), d.doc_id))
    return DocumentList(documents=listed[:MAX_DOCUMENTS], truncated=len(listed) > MAX_DOCUMENTS)
