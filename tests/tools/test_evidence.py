from sovra.tools.evidence import best_sentences, split_sentences

CLAUSES = """4. Termination
4.1 Either party may terminate this Agreement for cause with immediate effect if the other party
materially breaches it.
4.2 Nordbank may terminate this Agreement early for convenience by giving not less than 90
days' written notice. No termination fee is payable.

5. Liability
5.1 The total liability of each party is limited to EUR 250,000 per contract year."""


def test_units_are_clauses_not_pdf_lines_and_headings_are_dropped():
    units = [u for u, _ in split_sentences(CLAUSES)]
    assert units[1] == (
        "4.2 Nordbank may terminate this Agreement early for convenience by giving not less than 90 "
        "days' written notice. No termination fee is payable."
    )
    assert "4. Termination" not in units and "5. Liability" not in units
    for unit, start in split_sentences(CLAUSES):
        assert " ".join(CLAUSES[start:].split()).startswith(unit[:30])


def test_long_paragraphs_are_cut_at_sentence_ends():
    para = " ".join(f"Sentence number {i} says something about the policy." for i in range(40))
    units = [u for u, _ in split_sentences(para)]
    assert len(units) > 3 and all(len(u) <= 420 for u in units)
    assert all(u.endswith(".") for u in units)


def test_best_units_answer_the_question_and_carry_lexical_support(embedder):
    [picked] = best_sentences("Can we end the contract early for convenience?", [CLAUSES], embedder, per_passage=1)
    assert picked[0].text.startswith("4.2 Nordbank may terminate")
    assert picked[0].overlap >= picked[0].needed
    [off_topic] = best_sentences("What is the pet insurance allowance for horses?", [CLAUSES], embedder, 1)
    assert off_topic[0].overlap < off_topic[0].needed
