"""``POST /v1/search``: the documents the token's user may read, searched without an agent.

The same call the MCP server's ``search`` tool makes (:func:`sovra.tools.direct.call_tool` on
``search_documents``): ACL-filtered inside the index, one audited run per call (interface ``api``),
passages with their chunk ids to cite.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from sovra.runtime import Runtime
from sovra.ui.api_auth import CurrentUser
from sovra.ui.api_state import run_locked

router = APIRouter(prefix="/v1", tags=["search"])


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # the user comes from the token, never from the body

    query: str = Field(min_length=1, max_length=4000)
    limit: int = Field(default=6, ge=1, le=50)
    sources: list[str] = Field(default_factory=list, max_length=20)
    doc_types: list[str] = Field(default_factory=list, max_length=20)


@router.post("/search")
async def search(body: SearchRequest, user: CurrentUser, request: Request) -> dict[str, Any]:
    """Search the documents the token's user may read; passages with chunk id, document, page, score."""
    from sovra.tools.direct import call_tool, search_summary
    from sovra.tools.search import search_documents

    def run(rt: Runtime) -> Any:
        return call_tool(
            search_documents,
            body.model_dump(),
            user,
            rt.services,
            interface="api",
            summarize=search_summary,
            found=lambda r: bool(r.hits),
        )

    done = await run_locked(request, run, admit=user.id)
    hits = [
        {k: v for k, v in h.model_dump(mode="json").items() if k not in ("char_start", "char_end", "metadata")}
        for h in done.result.hits
    ]
    return {"run_id": done.run_id, "query": done.result.query, "hits": hits}
