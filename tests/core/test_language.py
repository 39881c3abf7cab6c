"""Issue 25: each chunk's language (ISO 639-1) detected at ingest, stored in its payload and usable
as a search filter like doc_types. Real detector (fastText lid.176.ftz), real embedded Qdrant."""

from __future__ import annotations

from pathlib import Path

import pytest
from multilingual_support import PASSAGES, build_index, name_of, top

from sovra.embeddings import Embedder
from sovra.index import SearchFilter
from sovra.language import detect_language
from sovra.tools.search import SearchArgs


def test_detect_language_on_real_sentences() -> None:
    expected = {
        "law_fr.txt": "fr",
        "interest_de.txt": "de",
        "kyc_en.txt": "en",
        "fees_nl.txt": "nl",
        "termination_it.txt": "it",
    }
    assert {name: detect_language(text) for name, text in PASSAGES.items()} == expected
    assert detect_language("El contrato se rige por la legislación española vigente.") == "es"
    # Too little text to tell: no language rather than a guess.
    assert detect_language("12.000,00 EUR") is None
    assert detect_language("") is None


def test_language_is_stored_per_chunk_and_filters_the_search(embedder: Embedder, tmp_path: Path) -> None:
    index = build_index(tmp_path, embedder, PASSAGES)
    try:
        hits = top(index, embedder, "contract", n=10)
        assert {name_of(h.doc_id): h.metadata["language"] for h in hits} == {
            "law_fr.txt": "fr",
            "interest_de.txt": "de",
            "kyc_en.txt": "en",
            "fees_nl.txt": "nl",
            "termination_it.txt": "it",
        }
        only_fr_de = SearchFilter(("group:everyone",), languages=("fr", "DE"))
        hits = top(index, embedder, "contract", only_fr_de, n=10)
        assert sorted(h.metadata["language"] for h in hits) == ["de", "fr"]
        # The filter narrows like doc_types: combined with the ACL, never widening it.
        none = SearchFilter(("group:nobody",), languages=("fr",))
        assert top(index, embedder, "contract", none) == []
    finally:
        index.close()


def test_search_tool_takes_languages_as_iso_codes() -> None:
    assert SearchArgs(query="x", languages=["fr", "de"]).languages == ["fr", "de"]
    with pytest.raises(ValueError, match="ISO 639-1"):
        SearchArgs(query="x", languages=["french"])
