"""A new connector, a new tool and a new agent for Sovra, in under 50 lines (see docs/sdk.md)."""

import hashlib
import sys
from pathlib import Path

from sovra.agents.sdk import define_agent
from sovra.connectors.base import create, register
from sovra.documents import Document, Page
from sovra.ingest import Ingestor
from sovra.runtime import Runtime
from sovra.tools.base import ToolContext, tool
from sovra.tools.search import SearchArgs, search_documents


class VendorNotes:  # the connector: one Markdown note per vendor, readable by finance only
    def __init__(self, folder: str, name: str = "vendor-notes") -> None:
        self.folder, self.name = Path(folder), name

    def documents(self):
        for p in sorted(self.folder.glob("*.md")):
            text, digest = p.read_text(), hashlib.sha256(p.read_bytes()).hexdigest()
            yield Document(f"{self.name}:{p.stem}", p.stem.replace("-", " ").title(), self.name, p.resolve().as_uri(),
                           digest, frozenset({"group:finance"}), lambda t=text: [Page(1, t)])


@tool
def vendor_notes(question: str, ctx: ToolContext) -> list[str]:
    """Search the vendor due-diligence notes; returns numbered passages to cite."""
    hits = search_documents(SearchArgs(query=question, limit=2, sources=["vendor-notes"]), ctx).hits
    return [f"[{ctx.cite(kind='document', title=h.title, url=h.url, page=h.page, quote=h.text)}] {h.text}"
            for h in hits]


agent = define_agent("vendors", "Answers questions about our vendors from the due-diligence notes.",
                     tools=[vendor_notes], system_prompt="Answer from the vendor notes, citing them like [1].",
                     needs_index=True)
register("vendor_notes", VendorNotes)  # config and code can now build it by name: create("vendor_notes", ...)


def main(question: str, user: str, runtime: Runtime, asked=agent) -> str:
    notes = create("vendor_notes", folder=str(Path(__file__).parent / "vendor_notes"))
    Ingestor(runtime.services.index, runtime.services.embedder, runtime.settings.paths.state_db).run([notes])
    answer = runtime.ask(asked, question, user)
    return "\n".join([answer.text, *(c.label() for c in answer.citations)])


if __name__ == "__main__":  # python examples/vendor_agent.py "Who audits Nimbus Cloud?" bob
    print(main(sys.argv[1], sys.argv[2], Runtime()))
