from hypothesis import given, settings
from hypothesis import strategies as st

from sovra.chunking import chunk_pages
from sovra.documents import Page

CONTRACT = (
    "1. Parties\nThis agreement is made between Nordbank AG and Acme Office Supplies GmbH.\n\n"
    "2. Term\nThe agreement starts on 1 January 2024 and runs for three years.\n\n"
    "3. Fees\n"
    + "The monthly fee is EUR 8,500, payable in arrears. " * 4
    + "\n\n4. Termination\nEither party may terminate for convenience with 90 days' written notice.\n"
)


def test_offsets_point_at_the_chunk_text():
    pages = [Page(1, CONTRACT), Page(2, "Annex A\n\nPrice list. " * 40)]
    chunks = chunk_pages("c1", pages, size=300, overlap=40)
    assert len(chunks) > 3
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert pages[c.page - 1].text[c.char_start : c.char_end] == c.text
        assert len(c.text) <= 300


def test_prefers_clause_boundaries():
    chunks = chunk_pages("c1", [Page(1, CONTRACT)], size=260, overlap=0)
    starts = [c.text.split("\n")[0] for c in chunks]
    assert any(s.startswith("4. Termination") for s in starts), starts


def test_chunk_ids_are_stable_and_unique():
    a = chunk_pages("doc", [Page(1, CONTRACT)], size=200, overlap=20)
    b = chunk_pages("doc", [Page(1, CONTRACT)], size=200, overlap=20)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)


def test_blank_pages_give_no_chunks():
    assert chunk_pages("doc", [Page(1, "   \n\n  ")]) == []


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=3000), st.integers(50, 400), st.integers(0, 49))
def test_chunks_cover_all_text_and_terminate(text, size, overlap):
    chunks = chunk_pages("d", [Page(1, text)], size=size, overlap=overlap)
    covered = set()
    for c in chunks:
        assert text[c.char_start : c.char_end] == c.text
        covered.update(range(c.char_start, c.char_end))
    # Every non-space character lands in some chunk.
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
