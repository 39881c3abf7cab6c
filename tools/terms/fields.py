"""Field extractors: each key term a bank compares, read from a document's passages.

An extractor has cues (words that say a passage is about its field, in the text or in the heading)
and a reader that turns a cued passage into candidate values with their span. ``resolve`` then
decides one of three states, so a caller can never mistake silence for agreement:

- ``found``: one value wins, with the passage it was read from;
- ``not_stated``: no passage is about the field (the document says nothing);
- ``undetermined``: passages are about the field but no value could be read, or candidates
  disagree; the quotes are kept for the person who reads the report.

Extractors are plain objects registered in ``EXTRACTORS``; add one to read a new field. Nothing
here is fitted to one document's wording: cues are the words agreements in general use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sovra.tools.terms.layout import Passage
from sovra.tools.terms.normalize import (
    Duration,
    Jurisdiction,
    find_dates,
    find_durations,
    find_jurisdictions,
    find_money,
    merge_jurisdictions,
)


@dataclass
class Candidate:
    value: Any  # the typed value (date, Duration, Jurisdiction, list of names, bool, Money, str)
    norm: str  # what two candidates (or two documents) compare on
    show: str  # how a person reads it
    passage: Passage
    start: int  # span on the page
    end: int
    score: float


@dataclass
class Reading:
    """What one extractor made of one document: the candidates and the passages it looked at."""

    name: str
    candidates: list[Candidate] = field(default_factory=list)
    cued: list[Passage] = field(default_factory=list)  # passages clearly about the field


Reader = Callable[[list[Passage]], Reading]
EXTRACTORS: dict[str, tuple[str, Reader]] = {}


def extractor(name: str, label: str) -> Callable[[Reader], Reader]:
    def register(fn: Reader) -> Reader:
        EXTRACTORS[name] = (label, fn)
        return fn

    return register


def _cand(value: Any, norm: str, show: str, p: Passage, s: int, e: int, score: float) -> Candidate:
    """A candidate whose span ``s:e`` is relative to the passage text (mapped onto the page)."""
    return Candidate(value, norm, show, p, p.start, p.end, score) if s < 0 else _mapped(value, norm, show, p, score)


def _mapped(value: Any, norm: str, show: str, p: Passage, score: float) -> Candidate:
    return Candidate(value, norm, show, p, p.start, p.end, score)


def _before(text: str, at: int, pattern: re.Pattern[str], width: int = 60) -> bool:
    return bool(pattern.search(text[max(0, at - width) : at]))


def _label_is(p: Passage, pattern: str | re.Pattern[str]) -> bool:
    """The passage is a labelled row or item ("| Governing law | ..."; "- Renewal: ...") about ``pattern``."""
    found = pattern.search(p.label) if isinstance(pattern, re.Pattern) else re.search(pattern, p.label, re.I)
    return bool(p.label) and bool(found)


def _about(p: Passage, pattern: re.Pattern[str]) -> bool:
    return bool(pattern.search(p.about()))


# --- governing law ------------------------------------------------------------------------------------

_LAW_CUE = re.compile(
    r"govern(?:ed|s|ing)\b|constru(?:ed|ction)\b|interpret(?:ed|ation)\b|applicable\s+law|laws?\s+of\b|"
    r"\blaw\b|anwendbar|unterliegt|Recht\b|droit|régi|regi\b|loi",
    re.I,
)
_LAW_STRONG = re.compile(
    r"govern(?:ed|s)\b[^.;]{0,30}?\b(?:by|in\s+accordance|under)\b|^\W*(?:[\d.]+\s*)?governing\s+law\b|"
    r"(?:constru|interpret|enforc)\w*\b[^.;]{0,60}\blaws?\s+of\b|laws?\s+of\b[^.;]{0,60}\b(?:shall|will)\s+(?:govern|apply)|"
    r"(?:this|the)\s+agreement\b[^.;]{0,40}\b(?:made|entered\s+into)\s+under\b[^.;]{0,60}\blaws?\s+of\b|"
    r"choice\s+of\s+law|unterliegt[^.]{0,40}Recht|anwendbare[sn]?\s+Recht|Rechtswahl|"
    r"droit\s+applicable|régi(?:e|s)?\s+par|soumis\s+au\s+droit|\b\w+\s+law\s+(?:applies|shall\s+apply)",
    re.I,
)
_LAW_HEAD = re.compile(
    r"governing\s+law|applicable\s+law|choice\s+of\s+law|anwendbares\s+recht|droit\s+applicable", re.I
)
_NOT_LAW = re.compile(
    r"(?:organi[sz]ed|incorporated|existing|formed|registered|chartered|domiciled|resident|located|"
    r"courts?|venue|arbitration|office|seat|principal\s+place)\b[^.;]{0,40}$",
    re.I,
)


@extractor("governing_law", "Governing law")
def governing_law(ps: list[Passage]) -> Reading:
    r = Reading("governing_law")
    for p in ps:
        strong = bool(_LAW_STRONG.search(p.text)) or _about(p, _LAW_HEAD)
        if not strong:
            continue
        r.cued.append(p)
        cue = _LAW_STRONG.search(p.text)
        at = cue.start() if cue else 0
        found = [f for f in find_jurisdictions(p.text) if f.start >= at - 5 and not _before(p.text, f.start, _NOT_LAW)]
        if not found and _about(p, _LAW_HEAD):
            found = [f for f in find_jurisdictions(p.text) if not _before(p.text, f.start, _NOT_LAW)]
        if not found:
            continue
        # The jurisdictions named together in the clause ("Ontario and the federal laws of Canada").
        group = [found[0]] + [f for f in found[1:] if f.start - found[0].end < 120]
        j = merge_jurisdictions([f.value for f in group])  # type: ignore[misc]
        if j is None:
            for f in group:
                jj: Jurisdiction = f.value  # type: ignore[assignment]
                r.candidates.append(_mapped(jj, _law_norm(jj), str(jj), p, 1.0))
            continue
        direct = re.search(
            r"govern\w*\s+(?:by|in)|constru\w*\s+(?:in\s+accordance|under)|unterliegt|régi", p.text, re.I
        )
        score = 2.0 + (2.0 if _about(p, _LAW_HEAD) else 0.0) + (3.0 if direct else 0.0)
        r.candidates.append(_mapped(j, _law_norm(j), str(j), p, score))
    return r


def _law_norm(j: Jurisdiction) -> str:
    return "GB-EW" if j.code in ("GB-ENG", "GB-EW") else j.code


# --- dates ----------------------------------------------------------------------------------------------

_AGREEMENT_CUE = re.compile(
    r"\b(?:dated|entered\s+into|made\s+(?:and\s+entered\s+into\s+)?(?:as\s+of|on|this)|executed|as\s+of|"
    r"this\s+\d|day\s+of|signed|vom|du|le|en\s+date\s+du|abgeschlossen)\b",
    re.I,
)
_AGREEMENT_NEAR = re.compile(
    r"(?:dated|entered\s+into|made|executed|signed|concluded|as\s+of|this|on|vom|du|le)\s*(?:as\s+of|on|this)?\s*"
    r"(?:the\s+)?$",
    re.I,
)
_AGREEMENT_HEAD = re.compile(
    r"^\s*(?:date\s+of\s+(?:the\s+|this\s+)?agreement|agreement\s+date|dated?|datum|date\s+de\s+signature)\s*$", re.I
)
_RECITAL = re.compile(r"^\s*(?:(?:whereas|recitals?)\b|\(?[A-H]\)|[A-H]\.\s)", re.I)
# The sentence that dates this agreement: "This Supply Agreement ... is made / entered into / dated ...".
_OPENING = re.compile(
    r"\b(?:this|the)\s+(?:[\w-]+\s+){0,6}?(?:agreement|contract)\b[^.]{0,120}?\b(?:made|entered|dated|executed)\b",
    re.I,
)
_OTHER_AGREEMENT = re.compile(
    r"(?:that\s+certain|the|an?|said)\s+(?:[A-Z][\w-]*\s+){0,6}(?:Agreement|Contract|Deed|Memorandum)\b[^.]{0,40}$"
)
_EFFECTIVE_NEAR = re.compile(
    r"(?:effective|commenc\w*|wirksam\w*|en\s+vigueur)\s*(?:as\s+of|on|from|with\s+effect\s+from)?\s*(?:this\s+)?"
    r"(?:the\s+)?$|effective\s+date\b[^.]{0,60}?(?:shall\s+be|is|will\s+be|:)\s*$",
    re.I,
)
_EFFECTIVE_AFTER = re.compile(r"^[\s,]*\((?:the|hereinafter)?[^)]{0,30}effective\s+date", re.I)
_EFFECTIVE_HEAD = re.compile(r"effective\s+date|commencement\s+date|date\s+of\s+effect|inkrafttreten", re.I)
_EFFECTIVE_REF = re.compile(
    r"effective\s+(?:as\s+of|on)\s+the\s+(?:date\s+(?:first\s+)?(?:written|set\s+forth|stated)\s+above|"
    r"date\s+hereof|date\s+of\s+(?:this\s+agreement|execution|signature)|last\s+date)|"
    r"[\"“]effective\s+date[\"”]\s+(?:shall\s+)?means?\s+the\s+date\s+(?:first\s+)?(?:written|set\s+forth|of\s+this)",
    re.I,
)
_END_NEAR = re.compile(
    r"(?:expir\w*|terminat\w*|until|through|thru|ending|end(?:s|ing)?\s+on|continu\w*\s+(?:in\s+[^.]{0,30})?(?:until|through)|"
    r"remain\w*\s+in\s+(?:full\s+)?(?:force|effect)\s+(?:until|through)|expiry|bis\s+zum|jusqu'au)\s*(?:on\s+)?(?:the\s+)?$",
    re.I,
)
_END_HEAD = re.compile(r"expir|end\s+date|expiry|term\s+end|maturity|termination\s+date", re.I)
_TERM_CONTEXT = re.compile(r"\bterm\b|expir|terminat|laufzeit|durée", re.I)
_PREAMBLE = 12  # passages at the top of a document where its date and parties are stated


@extractor("agreement_date", "Agreement date")
def agreement_date(ps: list[Passage]) -> Reading:
    r = Reading("agreement_date")
    for p in ps:
        head = p.index < _PREAMBLE
        labelled = bool(_AGREEMENT_HEAD.search(p.label)) if p.label else False
        if not (
            head
            or labelled
            or re.search(r"\b(?:this|the)\s+agreement\s+(?:is\s+)?dated\b|\bagreement\s+date\b", p.text, re.I)
        ):
            continue
        if _RECITAL.match(p.text) and not labelled:
            continue
        dates = find_dates(p.text)
        if not dates:
            continue
        if labelled or (head and _AGREEMENT_CUE.search(p.text)):
            r.cued.append(p)
        for f in dates:
            score = (
                0.5 + (2.0 if head else 0.0) + (4.0 if labelled else 0.0) + (1.5 if _OPENING.search(p.text) else 0.0)
            )
            if _before(p.text, f.start, _AGREEMENT_NEAR, 45):
                score += 3.0
            if _before(p.text, f.start, _EFFECTIVE_NEAR, 80) or _EFFECTIVE_AFTER.search(p.text[f.end :]):
                score -= 1.5
            if _before(p.text, f.start, _END_NEAR, 40):
                continue
            if _before(p.text, f.start, _OTHER_AGREEMENT, 90) and not _before(
                p.text, f.start, re.compile(r"this\s+\w*\s*agreement[^.]{0,40}$", re.I), 90
            ):
                score -= 3.0
            score -= p.index * 0.05
            r.candidates.append(_mapped(f.value, f.value.isoformat(), _show_date(f.value), p, score))  # type: ignore[attr-defined]
    return r


@extractor("effective_date", "Effective date")
def effective_date(ps: list[Passage]) -> Reading:
    r = Reading("effective_date")
    for p in ps:
        labelled = _label_is(p, _EFFECTIVE_HEAD)
        mentions = re.search(r"effective|commencement\s+date|inkrafttreten|en\s+vigueur", p.text, re.I)
        if not (labelled or mentions):
            continue
        if _EFFECTIVE_REF.search(p.text):
            r.cued.append(p)
            r.candidates.append(_mapped("agreement_date", "=agreement_date", "the agreement date", p, 2.5))
            continue
        for f in find_dates(p.text):
            near = _before(p.text, f.start, _EFFECTIVE_NEAR, 80) or bool(_EFFECTIVE_AFTER.search(p.text[f.end :]))
            if not (near or labelled):
                continue
            r.cued.append(p)
            score = 3.0 + (2.0 if labelled else 0.0) + (2.0 if p.index < _PREAMBLE else 0.0)
            if _before(p.text, f.start, re.compile(r"(?:to|until|through|and|ending)\s*(?:on\s+)?$", re.I), 15):
                continue  # "Effective 16 October 2005 to 31 March 2006": the second date ends the period
            r.candidates.append(_mapped(f.value, f.value.isoformat(), _show_date(f.value), p, score))  # type: ignore[attr-defined]
    return r


@extractor("expiration_date", "Expiration date")
def expiration_date(ps: list[Passage]) -> Reading:
    r = Reading("expiration_date")
    for p in ps:
        labelled = _label_is(p, _END_HEAD)
        if not (labelled or _TERM_CONTEXT.search(p.text) or _about(p, re.compile(r"\bterm\b", re.I))):
            continue
        for f in find_dates(p.text):
            if not (labelled or _before(p.text, f.start, _END_NEAR, 50)):
                continue
            if not labelled and _before(
                p.text, f.start, re.compile(r"(?:effective|dated|commenc\w*|from)\s*(?:as\s+of|on)?\s*$", re.I), 25
            ):
                continue
            r.cued.append(p)
            score = 3.0 + (2.0 if labelled else 0.0) + (1.0 if _about(p, re.compile(r"\bterm\b", re.I)) else 0.0)
            r.candidates.append(_mapped(f.value, f.value.isoformat(), _show_date(f.value), p, score))  # type: ignore[attr-defined]
    return r


def _show_date(d: Any) -> str:
    return f"{d.strftime('%B')} {d.day}, {d.year}"


# --- term, renewal, notice -------------------------------------------------------------------------------

_CONTRACT_WORD = r"\b(?:agreement|term|contract|vertrag|laufzeit|contrat|durée)\b"
_RENEW = re.compile(
    r"renew|extend\w*|extension|successive|consecutive|year[\s-]to[\s-]year|verlänger|reconduction|renouvel", re.I
)
# Renewal periods said with a word: "renewing annually", "automatic annual renewals", "month-to-month".
_RENEW_EVERY = re.compile(
    r"renew\w*\s+(?P<a>annually|yearly|monthly)|(?P<b>annual|yearly|monthly)\s+(?:renewals?|extensions?)|"
    r"(?P<c>year|month)[\s-]to[\s-](?:year|month)",
    re.I,
)
_NOTICE = re.compile(r"notice|notify|notification|kündig|frist|préavis|notifi", re.I)
_NOTICE_GAP = re.compile(r"(?:notice|notify|notification|kündig\w*|préavis)", re.I)
_INITIAL = re.compile(
    r"initial\s+term|term\s+of\s+(?:this|the)\s+agreement|(?:shall|will)\s+(?:continue|remain)\s+in\s+(?:full\s+)?"
    r"(?:force|effect)\s+for|for\s+a\s+(?:period|term)\s+of|original\s+term|laufzeit|durée",
    re.I,
)
_NOT_TERM = re.compile(
    r"(?:within|prior|before|after|notice|warrant\w*|cure|payment|invoice|net)\W+(?:\w+\W+){0,3}$", re.I
)


@extractor("initial_term", "Initial term")
def initial_term(ps: list[Passage]) -> Reading:
    r = Reading("initial_term")
    for p in ps:
        labelled = _label_is(p, r"\b(?:initial\s+)?term\b|duration|laufzeit|durée")
        if not (labelled or _INITIAL.search(p.text)):
            continue
        cue = _INITIAL.search(p.text)
        if labelled or (cue and re.search(r"initial\s+term|term\s+of\s+(?:this|the)\s+agreement", cue.group(0), re.I)):
            r.cued.append(p)
        for f in find_durations(p.text):
            if cue and f.start < cue.start() and not labelled:
                continue
            if _before(p.text, f.start, _NOT_TERM, 40) or _before(p.text, f.start, _RENEW, 40):
                continue
            d: Duration = f.value  # type: ignore[assignment]
            if d.unit == "days" and d.amount < 180:
                continue
            score = 3.0 + (2.0 if labelled else 0.0) + (1.0 if re.search(r"initial\s+term", p.text, re.I) else 0.0)
            r.candidates.append(_mapped(d, _dur_norm(d), str(d), p, score))
            break
    return r


@extractor("renewal_term", "Renewal term")
def renewal_term(ps: list[Passage]) -> Reading:
    """How long each renewal lasts: the first duration after "renew" / "successive" that is not a notice."""
    r = Reading("renewal_term")
    for p in ps:
        labelled = _label_is(p, r"renew")
        cue = _RENEW.search(p.text)
        if not (labelled or cue):
            continue
        if not labelled and not re.search(_CONTRACT_WORD, p.text, re.I):
            continue
        r.cued.append(p)
        at = cue.start() if cue else 0
        for f in find_durations(p.text):
            if f.start < at and not labelled:
                continue
            if _before(p.text, f.start, _NOTICE_GAP, 40) or re.match(
                r"\W*(?:(?:\w+\W+){0,2}(?:prior|before|in\s+advance)|(?:written\s+|advance\s+|prior\s+)?notice)",
                p.text[f.end :],
                re.I,
            ):
                continue
            d: Duration = f.value  # type: ignore[assignment]
            extra = 1.0 if re.search(r"successive|additional|further", p.text, re.I) else 0.0
            score = 3.0 + (2.0 if labelled else 0.0) + extra
            r.candidates.append(_mapped(d, _dur_norm(d), str(d), p, score))
            break
        else:
            every = _RENEW_EVERY.search(p.text)
            if every:
                word = (every["a"] or every["b"] or every["c"]).lower()
                d = Duration(1, "months" if word.startswith("month") else "years")
                r.candidates.append(_mapped(d, _dur_norm(d), str(d), p, 3.0 + (2.0 if labelled else 0.0)))
    return r


_AUTO = re.compile(
    r"automatic\w*\s+(?:be\s+)?(?:renew|extend)|renew\w*\s+automatic|(?:shall|will)\s+(?:thereafter\s+)?(?:be\s+)?"
    r"(?:renewed|extended|renew|continue)\b[^.]{0,160}unless|unless\b[^.]{0,160}(?:renew|extend)|stillschweigend|tacite|"
    r"verlängert\s+sich\s+(?:jeweils\s+)?automatisch|automatisch\w*\s+verlänger|se\s+renouvelle\w*\s+(?:automatiquement|par\s+tacite)",
    re.I,
)
_OPTIONAL = re.compile(
    r"(?:may|option\s+to|right\s+to)\s+(?:be\s+)?(?:renew|extend)|mutual\w*\s+(?:written\s+)?agree", re.I
)


@extractor("auto_renewal", "Renews automatically")
def auto_renewal(ps: list[Passage]) -> Reading:
    r = Reading("auto_renewal")
    for p in ps:
        labelled = _label_is(p, r"renew")
        if not (labelled or (_RENEW.search(p.text) and re.search(_CONTRACT_WORD, p.text, re.I))):
            continue
        r.cued.append(p)
        if _AUTO.search(p.text):
            r.candidates.append(_mapped(True, "yes", "yes", p, 3.0 + (2.0 if labelled else 0.0)))
        elif _OPTIONAL.search(p.text):
            r.candidates.append(
                _mapped(False, "no", "no (renewal by option or agreement)", p, 2.0 + (2.0 if labelled else 0.0))
            )
    return r


_NOTICE_CONTEXT = re.compile(
    r"renew|non-renewal|expir|end\s+of\s+(?:the|then|such|any)|not\s+to\s+(?:extend|continue)|verlänger|renouvel", re.I
)
_RENEWAL_LENGTH = re.compile(
    r"(?:(?:additional|successive|consecutive|further|successives?|supplémentaires?|jeweils|weitere\w*)\s+"
    r"(?:[\w()'’]+\s+){0,2}|renewal\s+(?:term|period)s?\s+of\s+|d'un\s+|d’un\s+)$",
    re.I,
)
_NOTICE_OF = re.compile(
    r"(?:notice|préavis|frist|kündigungsfrist)\s+(?:period\s+)?(?:of|de|von)\s+(?:at\s+least\s+)?$", re.I
)
_DEADLINE = re.compile(r"(?:prior\s+to|before)\s+(?:the\s+)?(?:expir|end\s+of|renewal|automatic\s+renewal)", re.I)
_BREACH = re.compile(r"breach|default|cure|insolven|bankrupt|fails?\s+to|failure|force\s+majeure", re.I)


@extractor("notice_period", "Notice to terminate / not renew")
def notice_period(ps: list[Passage]) -> Reading:
    """The notice a party gives to end the agreement or stop it renewing: of the durations in a clause
    about renewal or expiry, the one written closest to the word "notice"."""
    r = Reading("notice_period")
    for p in ps:
        labelled = _label_is(p, _NOTICE)
        deadline = _DEADLINE.search(p.text)  # "unless terminated within sixty (60) days prior to the expiration"
        about_end = re.search(
            r"terminat|renew|expir|kündig|résili|renouvel|reconduction|échéance|laufzeit", p.text, re.I
        )
        if not (labelled or ((_NOTICE.search(p.text) or deadline) and about_end)):
            continue
        context = _NOTICE_CONTEXT.search(p.text) or (labelled and _NOTICE_CONTEXT.search(p.label))
        if context:
            r.cued.append(p)
        notices = [m.start() for m in _NOTICE_GAP.finditer(p.text)]
        best: tuple[int, Any] | None = None
        for f in find_durations(p.text):
            tail = p.text[f.end : f.end + 40]
            if re.match(
                r"\W*(?:from|after|following|commencing|beginning|of\s+the\s+(?:initial\s+)?term)\b", tail, re.I
            ):
                continue  # "twelve (12) months from the date hereof": a term, not a notice
            if _before(p.text, f.start, _RENEWAL_LENGTH, 40):
                continue  # "for one (1) additional twelve month period": how long it renews
            gap = min((abs(n - f.end) if n >= f.end else f.start - n for n in notices), default=999)
            if re.match(r"\W*(?:prior|before|in\s+advance|preceding|avant|vor\b|zum\s+(?:ende|ablauf))", tail, re.I):
                gap = min(gap, 10)
            if _before(p.text, f.start, _NOTICE_OF, 30):  # "notice of sixty (60) days", "préavis de trois mois"
                gap = min(gap, 5)
            if gap > 60 and not labelled:
                continue
            if best is None or gap < best[0]:
                best = (gap, f)
        if best is None:
            continue
        d: Duration = best[1].value
        score = 1.0 + (3.0 if context else 0.0) + (2.0 if labelled else 0.0) - (3.0 if _BREACH.search(p.text) else 0.0)
        score += 1.0 if best[0] <= 10 else 0.0  # "sixty (60) days prior to" / "days' written notice": a deadline
        r.candidates.append(_mapped(d, _dur_norm(d), str(d), p, score))
    return r


def _dur_norm(d: Duration) -> str:
    n, unit = d.key
    return f"{n} {unit}"


# --- termination for convenience ---------------------------------------------------------------------

_CONVENIENCE = re.compile(
    r"terminat\w*[^.]{0,120}(?:for\s+(?:its\s+)?convenience|for\s+any\s+(?:or\s+no\s+)?reason|without\s+cause|"
    r"with\s+or\s+without\s+cause|at\s+any\s+time[^.]{0,60}(?:upon|by\s+giving|on|with)[^.]{0,40}notice|"
    r"in\s+its\s+(?:sole\s+)?discretion)|(?:for\s+convenience|ordentlich\w*\s+kündig|résili\w*[^.]{0,40}convenance)",
    re.I,
)
_NO_CONVENIENCE = re.compile(
    r"(?:no|neither|not|nor)\b[^.]{0,60}terminat\w*[^.]{0,40}(?:for\s+convenience|without\s+cause)|ordentliche\s+kündigung\s+ist\s+ausgeschlossen",
    re.I,
)


@extractor("termination_for_convenience", "Termination for convenience")
def termination_for_convenience(ps: list[Passage]) -> Reading:
    r = Reading("termination_for_convenience")
    for p in ps:
        labelled = _label_is(p, r"convenience|terminat")
        if _NO_CONVENIENCE.search(p.text):
            r.cued.append(p)
            r.candidates.append(_mapped(False, "no", "no", p, 4.0))
            continue
        if not (_CONVENIENCE.search(p.text) or (labelled and re.search(r"convenience", p.text + p.label, re.I))):
            continue
        if _BREACH.search(p.text) and not re.search(r"convenience|without\s+cause", p.text, re.I):
            continue
        r.cued.append(p)
        d = next((f.value for f in find_durations(p.text)), None)
        show = f"yes ({d} notice)" if d else "yes"
        r.candidates.append(_mapped(True, "yes", show, p, 3.5 if d else 3.0))
    return r


# --- courts ----------------------------------------------------------------------------------------------

_COURTS = re.compile(
    r"(?:courts?|tribunals?|venue|forum|Gerichtsstand|Gerichte|tribunaux)\s+(?:\w+\s+){0,5}?"
    r"(?:located\s+|sitting\s+|situated\s+|seated\s+)?(?:in|of|for|at|ist|de|à)\s+(?:the\s+)?"
    r"(?P<v>[A-Z][\w.'’-]*(?:\s+(?:of|am|an|der|upon|on|de|du|[A-Z][\w.'’-]*)){0,6})"
)
_COURTS_CUE = re.compile(r"jurisdiction|venue|courts?\b|Gerichtsstand|tribunaux|forum", re.I)


@extractor("courts", "Courts / jurisdiction")
def courts(ps: list[Passage]) -> Reading:
    r = Reading("courts")
    for p in ps:
        labelled = _label_is(p, r"jurisdiction|courts?|venue|gerichtsstand")
        if not (
            labelled
            or (
                _COURTS_CUE.search(p.text)
                and re.search(r"exclusive|submit|venue|jurisdiction|Gerichtsstand", p.text, re.I)
            )
        ):
            continue
        r.cued.append(p)
        m = _COURTS.search(p.text)
        if not m:
            continue
        place = re.sub(r"\s+(?:and|or|with|in|of|for|the)$", "", m["v"].strip(" .,")).strip()
        if len(place) < 3 or re.fullmatch(r"(?:competent|any|such|this|said|these|all)\b.*", place, re.I):
            continue
        norm = " ".join(re.sub(r"\b(?:the|city|county|of|state)\b", " ", place.lower()).split())
        r.candidates.append(_mapped(place, norm, place, p, 3.0 + (2.0 if labelled else 0.0)))
    return r


# --- money -----------------------------------------------------------------------------------------------

_MONEY_KINDS = {
    "liability_cap": re.compile(
        r"liabilit\w*[^.]{0,160}(?:exceed|limited\s+to|cap)|aggregate\s+liability|cap\s+on\s+liability", re.I
    ),
    "facility_amount": re.compile(r"\bfacility\b|commitment|principal\s+amount|loan\s+amount|credit\s+line", re.I),
    "fee": re.compile(
        r"\bfees?\b|price|royalt|compensation|\brent\b|charge|remunerat|consideration|payable|shall\s+pay", re.I
    ),
}


def _money_reader(kind: str, label_cue: str) -> Reader:
    def read(ps: list[Passage]) -> Reading:
        r = Reading(kind)
        for p in ps:
            labelled = _label_is(p, label_cue)
            if not (labelled or _MONEY_KINDS[kind].search(p.text)):
                continue
            money = find_money(p.text)
            if not money:
                continue
            r.cued.append(p)
            others = [k for k, pat in _MONEY_KINDS.items() if k != kind and pat.search(p.text)]
            for f in money[:1]:
                m = f.value
                score = 3.0 + (2.0 if labelled else 0.0) - (1.5 if others else 0.0)
                r.candidates.append(_mapped(m, f"{m.currency} {m.amount:.2f}", str(m), p, score))  # type: ignore[attr-defined]
        return r

    return read


EXTRACTORS["fee"] = ("Fee", _money_reader("fee", r"fee|price|rent|remuneration|compensation"))
EXTRACTORS["liability_cap"] = ("Liability cap", _money_reader("liability_cap", r"cap|liabilit"))
EXTRACTORS["facility_amount"] = ("Facility amount", _money_reader("facility_amount", r"facility|commitment|amount"))


_FREQ = re.compile(
    r"\b(monthly|quarterly|annually|yearly|semi-annually|per\s+(?:month|quarter|annum|year)|in\s+advance|in\s+arrears)\b",
    re.I,
)


@extractor("payment_schedule", "Payment schedule")
def payment_schedule(ps: list[Passage]) -> Reading:
    r = Reading("payment_schedule")
    for p in ps:
        labelled = _label_is(p, r"payment|invoice")
        if not (labelled or re.search(r"\b(?:payable|shall\s+(?:be\s+)?pa(?:y|id)|invoice[sd]?)\b", p.text, re.I)):
            continue
        freq = _FREQ.search(p.text)
        due = next(
            (
                f
                for f in find_durations(p.text)
                if re.search(r"within|net|after|of\s+receipt", p.text[max(0, f.start - 40) : f.end + 30], re.I)
            ),
            None,
        )
        if not (freq or due):
            continue
        r.cued.append(p)
        bits = [freq.group(1).lower()] if freq else []
        if due:
            bits.append(f"due within {due.value}")
        show = ", ".join(bits)
        r.candidates.append(_mapped(show, show, show, p, 2.0 + (2.0 if labelled else 0.0)))
    return r
