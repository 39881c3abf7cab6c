"""What a document is about: its entity, period and kind, read from its name and first pages.

Filings and agreements say who and when on their first page (a 10-K's cover names the registrant,
its trading symbol and the fiscal year end; an earnings release opens with "<Company> (NYSE: X)
... results for the fourth quarter 2022"), and file names often repeat it (``ACME_2022Q4_10Q.pdf``).
:func:`profile` reads those general patterns, nothing per company, into metadata keys:

- ``entity``: the company's name; ``entity_aliases``: the spellings a question may use (the name
  with and without its corporate suffix, trading symbols, a leading acronym, the first two
  letters of its first two words as in "AmEx"), each as lower-case letters and digits only;
- ``fiscal_year`` (int) and ``fiscal_quarter`` (1-4, quarterly documents), ``period`` ("FY2022",
  "2022Q4");
- ``doc_kind``: ``10-K``, ``10-Q``, ``8-K``, ``earnings release``, ``agreement``, ``term sheet``.

:func:`question_scope` reads the same things from a question; :func:`names_entity` tells whether a
question names a document's entity. Connector metadata always wins over what is read here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_SUFFIXES = {
    "inc", "incorporated", "corp", "corporation", "co", "company", "companies", "ltd", "limited", "llc",
    "lp", "plc", "sa", "ag", "nv", "se", "holdings", "holding", "group", "international", "the",
}  # fmt: skip
# Words that are never an entity alias on their own (a symbol such as ALL or IT is a common word).
_COMMON = {
    "all",
    "and",
    "any",
    "are",
    "for",
    "has",
    "its",
    "new",
    "now",
    "one",
    "the",
    "was",
    "who",
    "you",
    "key",
    "low",
}
_KIND_WORDS = (
    (re.compile(r"\b10-?k\b|annual report", re.I), "10-K"),
    (re.compile(r"\b10-?q\b|quarterly report", re.I), "10-Q"),
    (re.compile(r"\b8-?k\b|current report", re.I), "8-K"),
    (
        re.compile(r"earnings|(?:press|immediate) release|(?:report|announce)(?:s|d)? (?:\w+ ){0,6}results", re.I),
        "earnings release",
    ),
    (re.compile(r"term[ _-]?sheet", re.I), "term sheet"),
    (re.compile(r"agreement|contract", re.I), "agreement"),
)
_FILINGS = ("10-K", "10-Q", "8-K", "earnings release")
_COVER_KIND = (
    (re.compile(r"FORM\s*10-?K\b"), "10-K"),
    (re.compile(r"FORM\s*10-?Q\b"), "10-Q"),
    (re.compile(r"FORM\s*8-?K\b"), "8-K"),
)
_YEAR = re.compile(r"(?<![\d.$,])((?:19|20)\d{2})(?![\d,.]\d)")
_FILE_PERIOD = re.compile(r"(?<!\d)((?:19|20)\d{2})(?:[ _-]?Q([1-4]))?(?!\d)", re.I)
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_PERIOD_END = re.compile(
    r"(fiscal\s+year|quarterly\s+period|year|quarter|period)s?\s+ended\s*"
    + _MONTH
    + r"\s*\d{1,2}\s*,\s*((?:19|20)\d{2})",
    re.I,
)
_RESULTS_FOR = re.compile(r"results\s+for\s+(?:the\s+)?(?:[\w-]+\s+){0,6}?((?:19|20)\d{2})\b", re.I)
_EVENT_DATE = re.compile(
    r"earliest\s+event\s+reported\)?\s*:?\s*" + _MONTH + r"\s*\d{1,2}\s*,\s*((?:19|20)\d{2})", re.I
)
_REGISTRANT = re.compile(r"([^()]{2,160}?)\s*\(\s*Exact\s+name\s+of\s+registrant", re.I)
_LISTED = re.compile(
    r"([A-Z][\w.&',-]*(?:\s+(?:&\s+)?[A-Z][\w.&',-]*){0,5})\s*\(\s*(?:NYSE|NASDAQ|Nasdaq)\s*:\s*([A-Z.]{1,6})\)"
)
_SYMBOL = re.compile(r"\b([A-Z]{2,5})\s+(?:New\s+York\s+Stock\s+Exchange|NYSE|The\s+Nasdaq|Nasdaq)")
_QUARTER_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_Q_QUARTER = re.compile(r"\b(?:Q([1-4])|([1-4])Q|(first|second|third|fourth)[\s-]+quarter)\b", re.I)
_Q_HALF = re.compile(r"\b(?:H([12])|(first|second)\s+half)\b", re.I)
_Q_YEAR = re.compile(r"\b(?:FY\s?'?)?((?:19|20)\d{2})\b|\bFY\s?'?(\d{2})\b", re.I)
_WORD = re.compile(r"[A-Za-z0-9]+")


def _key(text: str) -> str:
    """Letters and digits only, lower case: how names and questions are compared."""
    return "".join(_WORD.findall(text)).casefold()


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def aliases(name: str, symbols: Sequence[str] = ()) -> list[str]:
    """The spellings of ``name`` a question may use, as :func:`_key` strings."""
    words = _words(name)
    out: list[str] = []
    core = list(words)
    while len(core) > 1 and core[-1].casefold() in _SUFFIXES:
        core.pop()
    if core and core[0].casefold() == "the" and len(core) > 1:
        core = core[1:]
    for cand in (words, core):
        if cand:
            out.append(_key(" ".join(cand)))
    if len(core) >= 2:
        first = core[0]
        # "MGM Resorts": a leading acronym in a name written in mixed case is how people say it.
        mixed = any(w[1:].islower() for w in core[1:] if len(w) > 1)
        if (first.isupper() and mixed and len(first) >= 2) or any(c.isdigit() for c in first):
            out.append(first.casefold())
        if len(core[0]) >= 3 and len(core[1]) >= 3:  # "AmEx", "FedEx": two syllables of two words
            out.append((core[0][:2] + core[1][:2]).casefold())
    out += [s.casefold() for s in symbols if len(s) >= 2]
    return [a for a in dict.fromkeys(out) if len(a) >= 2 and a not in _COMMON]


def _clean_name(raw: str) -> str:
    name = " ".join(raw.split()).strip(" ,.-–_")
    # A cover line may carry the file number or other labels before the name.
    name = re.sub(r"^.*?(?:No\.|Number|number)\s*:?\s*[\d-]+\s*", "", name)
    return name.strip(" ,.-–_")


def _registrant(block: str) -> str | None:
    """The name above "(Exact name of registrant ...)": the lines after the last one with a number
    or a label, joined; letters a PDF split off ("MGM R ESORTS") joined back."""
    lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
    kept: list[str] = []
    for ln in reversed(lines):
        if re.search(r"\d|:|_{3,}|\bOR\b|period|Commission|file", ln) or len(kept) >= 2:
            break
        kept.insert(0, ln)
    name = _clean_name(re.sub(r"\b([A-Z]) (?=[A-Z]{2,})", r"\1", " ".join(kept)))
    return name if 2 <= len(name) <= 80 else None


def _period_from_name(stem: str) -> tuple[int | None, int | None]:
    m = _FILE_PERIOD.search(stem)
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None


def _entity_from_name(stem: str) -> str | None:
    """The words of a file name before its first year or kind word: ``JOHNSON_JOHNSON_2022_10K``."""
    words = re.split(r"[\s_.-]+", stem)
    head: list[str] = []
    for w in words:
        if _FILE_PERIOD.fullmatch(w) or re.fullmatch(r"(?:19|20)\d{2}.*|10[KQ]|8K|FORM", w, re.I):
            break
        head.append(w)
    if not head or len(head) == len(words):  # no year or kind word: the name is not "<entity>_<period>"
        return None
    return " ".join(head)


@dataclass
class Profile:
    entity: str | None = None
    symbols: list[str] = field(default_factory=list)
    fiscal_year: int | None = None
    fiscal_quarter: int | None = None
    doc_kind: str | None = None

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.entity:
            out["entity"] = self.entity
            out["entity_aliases"] = aliases(self.entity, self.symbols)
        if self.fiscal_year:
            out["fiscal_year"] = self.fiscal_year
            if self.fiscal_quarter:
                out["fiscal_quarter"] = self.fiscal_quarter
            out["period"] = (
                f"{self.fiscal_year}Q{self.fiscal_quarter}" if self.fiscal_quarter else f"FY{self.fiscal_year}"
            )
        if self.doc_kind:
            out["doc_kind"] = self.doc_kind
        return out


def profile(name: str, title: str, first_pages: Sequence[str]) -> dict[str, Any]:
    """Entity, period and kind of a document from its file name, title and first pages' text."""
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name.rsplit("/", 1)[-1])
    head = "\n".join(first_pages)[:6000]
    p = Profile()
    for pattern, kind in _COVER_KIND:
        if pattern.search(head[:1500]):
            p.doc_kind = kind
            break
    if p.doc_kind is None:
        for text in (stem, title, head[:600]):
            p.doc_kind = next((kind for pattern, kind in _KIND_WORDS if pattern.search(text)), None)
            if p.doc_kind:
                break
    if p.doc_kind in ("agreement", "term sheet"):
        return p.metadata()  # parties, not a reporting entity: connectors' counterparty metadata says who
    if m := _REGISTRANT.search(head):
        p.entity = _registrant(m.group(1))
    if m := _LISTED.search(head):
        p.symbols.append(m.group(2))
        if p.entity is None:
            p.entity = _clean_name(m.group(1))
    p.symbols += [s for s in _SYMBOL.findall(head[:4000]) if s not in p.symbols and s not in ("NYSE", "LLC")][:2]
    if p.entity is None and p.doc_kind not in _FILINGS:
        return p.metadata()  # not a filing: a year or a word in its name says nothing about who
    from_name = _entity_from_name(stem)
    if p.entity is None:
        p.entity = from_name
    elif from_name and _key(from_name) != _key(p.entity):
        p.symbols.append(_key(from_name))  # the file's spelling is one more alias
    p.fiscal_year, p.fiscal_quarter = _period_from_name(stem)
    if p.fiscal_year is None:
        if m := _PERIOD_END.search(head):
            p.fiscal_year = int(m.group(2))
        else:
            release = _RESULTS_FOR.search(head[:3000]) if p.doc_kind == "earnings release" else None
            if m := _EVENT_DATE.search(head) or release:
                p.fiscal_year = int(m.group(1))
    quarterly = p.fiscal_quarter is None and p.doc_kind in ("10-Q", "earnings release")
    if quarterly and (m := _Q_QUARTER.search(head[:1500])):
        p.fiscal_quarter = int(m.group(1) or m.group(2) or _QUARTER_WORDS[m.group(3).casefold()])
    return p.metadata()


@dataclass(frozen=True)
class Scope:
    """The entities' spellings, years and quarters a question names (empty: it names none)."""

    words: tuple[str, ...]
    years: frozenset[int]
    quarters: frozenset[int]
    # Words the question writes with a capital inside the sentence ("the PlanetCAD agreement"),
    # casefolded: names, where a lower-case word may be any word ("annual report").
    capitalised: frozenset[str] = frozenset()


def question_scope(question: str) -> Scope:
    years: set[int] = set()
    for m in _Q_YEAR.finditer(question):
        years.add(int(m.group(1)) if m.group(1) else 2000 + int(m.group(2)))
    quarters: set[int] = set()
    for m in _Q_QUARTER.finditer(question):
        quarters.add(int(m.group(1) or m.group(2) or _QUARTER_WORDS[m.group(3).casefold()]))
    for m in _Q_HALF.finditer(question):
        half = 1 if (m.group(1) == "1" or (m.group(2) or "").casefold() == "first") else 2
        quarters |= {1, 2} if half == 1 else {3, 4}
    words = _words(question)
    capitalised = frozenset(w.casefold() for w in words[1:] if not w.islower() and not w.isdigit())
    return Scope(tuple(w.casefold() for w in words), frozenset(years), frozenset(quarters), capitalised)


def names_entity(scope: Scope, metadata: dict[str, Any]) -> bool:
    """Whether the question spells one of the document's entity aliases (one to four words)."""
    wanted = set(metadata.get("entity_aliases") or ())
    if not wanted:
        return False
    w = scope.words
    for i in range(len(w)):
        joined = ""
        for j in range(i, min(i + 4, len(w))):
            joined += w[j]
            if joined in wanted:
                return True
            # "JnJ's", "AmEx's": the possessive s is its own word after the apostrophe
    return False


_STOP = {
    "the", "and", "for", "with", "between", "from", "this", "that", "agreement", "inc", "corp", "ltd", "llc",
    "company", "co", "of", "to", "in", "on", "by", "an", "a",
}  # fmt: skip


def names_title(scope: Scope, title: str) -> bool:
    """Whether the question names the document by its title (a contract by its kind and parties, a
    report by name):

    * at least three of the title's distinctive words, and nearly all of them;
    * or its first four or more, in the title's order ("the Outsourcing Agreement between Photronics,
      Dai Nippon Printing and others": a title that lists more parties than the question);
    * or, for a title of two distinctive words, both, one of them a name the question capitalises
      ("the PlanetCAD co-branding agreement"; "the annual report" names no document)."""
    ordered = list(dict.fromkeys(w.casefold() for w in _words(title) if len(w) > 2 and w.casefold() not in _STOP))
    asked = set(scope.words)
    found = sum(1 for w in ordered if w in asked)
    if len(ordered) == 2:
        return found == 2 and any(w in scope.capitalised and w.isalpha() and len(w) > 3 for w in ordered)
    if len(ordered) < 3 or found < 3:
        return False
    lead = next((i for i, w in enumerate(ordered) if w not in asked), len(ordered))
    return found >= 0.8 * len(ordered) or lead >= 4


# The primary financial statements that every annual and quarterly report contains, in the wordings
# of US GAAP and IFRS and of the European languages Sovra reads: (kind, pattern, a title to search).
_OF = r"statements?\s+of\s+(?:consolidated\s+)?"
STATEMENTS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "balance sheet",
        re.compile(
            r"\bbalance\s+sheets?\b|\b" + _OF + r"financial\s+(?:position|condition)\b|\bbilan\b|\bbilanz\b"
            r"|\bstato\s+patrimoniale\b|\bbalance\s+general\b|\bbalans\b",
            re.I,
        ),
        "consolidated balance sheet",
    ),
    (
        "income statement",
        re.compile(
            r"\bincome\s+statements?\b|\b" + _OF + r"(?:income|operations|earnings|profit\s+or\s+loss)\b"
            r"|\bprofit\s+and\s+loss\b|\bp\s?&\s?l\b|\bcompte\s+de\s+r[ée]sultats?\b"
            r"|\bgewinn-?\s+und\s+verlustrechnung\b|\bconto\s+economico\b|\bwinst-?\s+en\s+verliesrekening\b"
            r"|\bcuenta\s+de\s+resultados\b",
            re.I,
        ),
        "consolidated statement of income",
    ),
    (
        "cash flow statement",
        re.compile(
            r"\bcash[\s-]?flows?\s+statements?\b|\b" + _OF + r"cash\s+flows?\b"
            r"|\btableau\s+des\s+flux\s+de\s+tr[ée]sorerie\b|\bkapitalflussrechnung\b"
            r"|\brendiconto\s+finanziario\b|\bkasstroomoverzicht\b|\bestado\s+de\s+flujos\s+de\s+efectivo\b",
            re.I,
        ),
        "consolidated statement of cash flows",
    ),
)
_HEADING_LINES = 6  # a statement's title is among the first lines of its page


def named_statements(question: str) -> list[tuple[str, re.Pattern[str], str]]:
    """The primary financial statements a question names ("... shown in the balance sheet")."""
    return [st for st in STATEMENTS if st[1].search(question)]


# The line items each statement reports (US GAAP / IFRS vocabulary, with French and German), as a
# question asks for them: a question about margins is answered from the income statement.
_IMPLIED = {
    "balance sheet": re.compile(
        r"\b(?:total\s+)?(?:assets|liabilit(?:y|ies)|inventor(?:y|ies)|working\s+capital)\b|\bcapital[\s-]intensi"
        r"|\b(?:shareholders|stockholders)'?\s+equity\b|\bactifs?\b|\bpassifs?\b"
        r"|\bverbindlichkeiten\b|\bvorr[äa]te\b|\beigenkapital\b",
        re.I,
    ),
    "income statement": re.compile(
        r"\b(?:gross|operating|net|profit)\s+(?:profit\s+)?margins?\b|\b(?:net\s+)?revenues?\b|\bnet\s+sales\b"
        r"|\bnet\s+(?:income|earnings|profit)\b|\bEPS\b|\bearnings\s+per\s+share\b|\boperating\s+income\b"
        r"|\bcost\s+of\s+(?:goods|sales|revenue)|\bchiffre\s+d'affaires\b|\br[ée]sultat\s+net\b|\bmarge\b"
        r"|\bums[aä]tz(?:erl[öo]se)?\b|\bjahres[üu]berschuss\b|\b(?:brutto|ebit)-?marge\b",
        re.I,
    ),
    "cash flow statement": re.compile(
        r"\bcapex\b|\bcapital\s+expenditures?\b|\bcapital[\s-]intensi|\bcash\s*flows?\b|\bcash\s+(?:from|provided\s+by)\s+operati"
        r"|\bdividends\s+paid\b|\bflux\s+de\s+tr[ée]sorerie\b|\binvestissements\b|\binvestitionsausgaben\b",
        re.I,
    ),
}


def implied_statements(question: str) -> list[tuple[str, re.Pattern[str], str]]:
    """The statements whose line items a question asks about ("gross margin", "capex",
    "inventory"), for a question that names no statement."""
    return [st for st in STATEMENTS if _IMPLIED[st[0]].search(question)]


# The words a primary statement's own title adds to the statement's name ("Condensed Consolidated
# Statements of Earnings (unaudited)", "Konzern-Gewinn- und Verlustrechnung"): a heading with other
# words ("Selected Income Statement Data", "Supplemental Balance Sheet Information") titles a table
# or a note about the statement. _CONSOLIDATED: the group's statements, which analysts mean.
_CONSOLIDATED = re.compile(
    r"^(?:consolidated|condensed|combined|consolid[ée]e?s?|consolidad[oa]s?|consolidat[oi]|geconsolideerde?"
    r"|konzern-?)$",
    re.I,
)
_TITLE_WORDS = re.compile(
    r"^(?:the|and|of|its|company|subsidiaries|group|statements?|unaudited|continued|interim|audited"
    r"|et|und|de|des|du|della|del|van|en|y|e|table|contents|\d+)$",
    re.I,
)


def statement_heading_rank(text: str, statement: re.Pattern[str]) -> int:
    """How plainly ``text`` (a page's first chunk) opens with that statement's title, among its
    first lines as a heading (not a sentence or a table row that mentions it): 3 the group's
    statement ("CONSOLIDATED BALANCE SHEETS", "Condensed Consolidated Statements of Earnings"), 2
    the statement's title alone ("INCOME STATEMENT", "Bilan"), 1 a heading with other words
    ("Selected Income Statement Data"), 0 not a statement page."""
    head = [line.strip() for line in text.splitlines() if line.strip()][:_HEADING_LINES]
    best = 0
    for line in head:
        m = statement.search(line)
        if m is None or "|" in line or line.endswith("."):
            continue
        rest = (line[: m.start()] + " " + line[m.end() :]).strip()
        words = [w for w in re.findall(r"[^\W_]+", rest) if not _TITLE_WORDS.match(w)]
        if not words:
            rank = 3 if "consolidat" in m.group().casefold() else 2
        elif all(_CONSOLIDATED.match(w) for w in words):
            rank = 3
        else:
            rank = 1 if len(rest) <= 30 else 0
        best = max(best, rank)
    return best


def residual_question(question: str, naming: list[str]) -> str:
    """The question without the words that name its documents (titles, entity names): once the
    search is narrowed to those documents, the rest of the question says which passage answers."""
    drop = {w.casefold() for text in naming for w in _words(text)}
    kept = [w for w in _words(question) if w.casefold() not in drop]
    return " ".join(kept) if len([w for w in kept if len(w) > 2]) >= 2 else question


def period_fit(scope: Scope, metadata: dict[str, Any]) -> int:
    """2: the document's year is the latest the question names (and its quarter, if named);
    1: another year the question names; 0: no year named, or the document has none."""
    year = metadata.get("fiscal_year")
    if not scope.years or not isinstance(year, int) or year not in scope.years:
        return 0
    quarter = metadata.get("fiscal_quarter")
    if year == max(scope.years) and (not scope.quarters or quarter in scope.quarters or quarter is None):
        return 2
    return 1
