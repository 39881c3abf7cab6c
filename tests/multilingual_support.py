"""Shared by the issue-25 tests: one short real-looking banking passage per topic and language, and
a small embedded index built from them through the real ingest pipeline."""

from __future__ import annotations

from pathlib import Path

from sovra.connectors.filesystem import FilesystemConnector
from sovra.index import SearchFilter
from sovra.index.edge import EdgeIndex
from sovra.ingest import Ingestor

EVERYONE = SearchFilter(("group:everyone",))

# One passage per topic and language; every topic exists in only one language, so a question can
# only find its answer across languages.
PASSAGES = {
    "law_fr.txt": "Droit applicable et juridiction. Le présent contrat de prêt est régi par le droit "
    "luxembourgeois. Tout litige relatif à sa validité, son interprétation ou son exécution sera soumis "
    "à la compétence exclusive des tribunaux de la ville de Luxembourg.",
    "interest_de.txt": "Zinsen. Der Kreditnehmer zahlt auf den jeweils ausstehenden Darlehensbetrag Zinsen "
    "in Höhe von 4,25 % pro Jahr. Die Zinsen sind vierteljährlich nachträglich zum Ende jedes "
    "Kalenderquartals fällig und werden auf Basis von 360 Tagen berechnet.",
    "kyc_en.txt": "Customer due diligence. Before opening an account the bank verifies the identity of the "
    "customer and of any beneficial owner on the basis of documents from a reliable and independent "
    "source, and keeps copies of those documents for five years after the relationship ends.",
    "fees_nl.txt": "Kosten. Voor het beheer van de effectenrekening brengt de bank een jaarlijkse "
    "beheervergoeding van 0,35 procent van de gemiddelde waarde van de portefeuille in rekening, "
    "met een minimum van vijftig euro per kalenderjaar.",
    "termination_it.txt": "Recesso. Il cliente può recedere dal contratto di conto corrente in qualsiasi "
    "momento, senza penalità e senza spese di chiusura, dandone comunicazione scritta alla banca con un "
    "preavviso di quindici giorni.",
}


NEUTRAL = {name: f"doc{n}" for n, name in enumerate(PASSAGES)}
BY_NEUTRAL = {f"docs:{v}.txt": k for k, v in NEUTRAL.items()}


def name_of(doc_id: str) -> str:
    return BY_NEUTRAL[doc_id]


def build_index(tmp_path: Path, embedder, files: dict[str, str]) -> EdgeIndex:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in files.items():
        # Neutral file names: the title (the file's stem) is embedded with the chunk.
        (docs / f"{NEUTRAL[name]}.txt").write_text(text, encoding="utf-8")
    index = EdgeIndex(tmp_path / "q", "c")
    report = Ingestor(index, embedder, tmp_path / "state.sqlite").run(
        [FilesystemConnector(docs, "docs", default_acl=["group:everyone"])]
    )
    assert report.added == len(files) and not report.failed
    return index


def top(index: EdgeIndex, embedder, question: str, flt: SearchFilter = EVERYONE, n: int = 5) -> list:  # type: ignore[no-untyped-def]
    return index.search(embedder.embed_query(question), embedder.sparse_query(question), flt, n, mode="dense")
