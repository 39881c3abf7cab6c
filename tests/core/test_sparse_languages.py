"""Issue 25: SOVRA_SPARSE_ANALYSIS=per_language stems each non-English text in its own language and
leaves English exactly as it was (the same vectors, document and question side)."""

from __future__ import annotations

from pathlib import Path

from multilingual_support import PASSAGES

from sovra.config import Settings
from sovra.embeddings import Embedder
from sovra.runtime import Services

ENGLISH = [
    PASSAGES["kyc_en.txt"],
    "This Agreement shall be governed by and construed in accordance with the laws of the State of New York.",
    "The Borrower shall repay the Loan in twelve equal quarterly instalments.",
]
GERMAN_DOC = "Die Verträge werden von den Vertragsparteien schriftlich gekündigt."
GERMAN_QUESTION = "Wie wird der Vertrag gekündigt?"


def _overlap(embedder: Embedder, doc: str, question: str) -> set[int]:
    (d,) = embedder.sparse_documents([doc])
    return set(d.indices) & set(embedder.sparse_query(question).indices)


def test_english_vectors_are_unchanged(model_cache: Path) -> None:
    today, per_language = Embedder(None, model_cache), Embedder(None, model_cache)
    per_language.sparse_by_language = True
    assert per_language.sparse_documents(ENGLISH) == today.sparse_documents(ENGLISH)
    for text in [*ENGLISH, "Which law governs the loan?", "notice period"]:
        assert per_language.sparse_query(text) == today.sparse_query(text)


def test_german_words_meet_their_stem(model_cache: Path) -> None:
    today, per_language = Embedder(None, model_cache), Embedder(None, model_cache)
    per_language.sparse_by_language = True
    # "Verträge" and "Vertrag" share the German stem "vertrag"; the English stemmer keeps them apart.
    assert len(_overlap(per_language, GERMAN_DOC, GERMAN_QUESTION)) > len(_overlap(today, GERMAN_DOC, GERMAN_QUESTION))
    # A German question still carries the English-analysed tokens, so it matches chunks indexed before.
    assert set(today.sparse_query(GERMAN_QUESTION).indices) <= set(per_language.sparse_query(GERMAN_QUESTION).indices)
    # Order and grouping by language do not change which vector belongs to which text.
    mixed = [ENGLISH[0], GERMAN_DOC, ENGLISH[1], PASSAGES["law_fr.txt"]]
    assert per_language.sparse_documents(mixed) == [per_language.sparse_documents([t])[0] for t in mixed]


def test_the_setting_reaches_the_embedder(tmp_path: Path) -> None:
    assert Services(Settings(data_dir=tmp_path)).embedder.sparse_by_language is False
    assert Services(Settings(data_dir=tmp_path, sparse_analysis="per_language")).embedder.sparse_by_language is True
