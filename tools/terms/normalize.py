"""Normalisers: turn the words a contract uses into typed values (dates, durations, money, places).

Each ``find_*`` function scans a piece of text and returns every value it can read, with the span
it came from, so a field extractor can keep the evidence. Parsing leans on well-kept libraries:
dateparser for dates written in any common form and language, text2num for number words, pycountry
(ISO 3166) for countries and their states and provinces. Nothing here knows any particular document.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

_LANGS = ["en", "de", "fr", "nl", "es", "it"]

# --- dates ----------------------------------------------------------------------------------------------

_ORD = r"(?:st|nd|rd|th|er|e|\.|°|º|ª)?"  # "1st", "1er", "1.", Italian and Spanish "1°", "1º"
_WORDMONTH = r"[A-Za-zÀ-ÿ]{3,10}\.?"
_DATE_RE = re.compile(
    r"(?<![\w/.-])(?:"
    # 15th day of March, 2019 / 15 March 2019 / 1er mars 2024 / 1. März 2024
    # 31 de agosto de 2009 (Spanish: "de" before the month and the year)
    rf"(?P<dmy>\d{{1,2}}\s?{_ORD}\s*(?:day\s+of\s+|de\s+)?{_WORDMONTH},?\s+(?:de\s+|del\s+)?(?:A\.?D\.?\s+)?\d{{4}})"
    # March 15, 2019 / July 11 , 2006 / Sept. 3rd 2020
    rf"|(?P<mdy>{_WORDMONTH}\s+\d{{1,2}}\s?{_ORD}\s*,?\s*\d{{4}})"
    # 3/15/2019, 15.03.2019, 2019-03-15, 1-1-2001 (day first, as Spanish and Dutch write it)
    r"|(?P<num>\d{1,2}[/.]\d{1,2}[/.](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|\d{1,2}-\d{1,2}-\d{4})"
    r")(?![\w/])"
)
_DAY_OF = re.compile(r"\bday\s+of\b", re.I)


@dataclass(frozen=True)
class Found:
    """A value read from ``text[start:end]``."""

    value: object
    start: int
    end: int


@lru_cache(maxsize=4096)
def parse_date(text: str, day_first: bool = False) -> dt.date | None:
    """One date written in any common form ("March 15, 2019", "15th day of March 2019", "3/15/2019",
    "1. März 2024"); None when it is not a complete, real date."""
    import dateparser

    t = _DAY_OF.sub(" ", text)
    t = re.sub(r"(\d)\s+(st|nd|rd|th)\b", r"\1\2", t)
    t = re.sub(r"\s+,", ",", " ".join(t.split()))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
        try:
            return dt.date.fromisoformat(t)
        except ValueError:
            return None
    order = "DMY" if day_first or re.fullmatch(r"\d{1,2}([.-])\d{1,2}\1\d{2,4}", t) else "MDY"
    settings = {"STRICT_PARSING": True, "DATE_ORDER": order, "PREFER_DAY_OF_MONTH": "first"}
    try:
        got = dateparser.parse(t, languages=_LANGS, settings=settings)  # type: ignore[arg-type]
    except (ValueError, OverflowError):
        return None
    if got is None or not 1900 <= got.year <= 2100:
        return None
    return got.date()


def find_dates(text: str) -> list[Found]:
    return list(_find_dates(text))  # a copy: the cached list is never handed out


@lru_cache(maxsize=4096)  # a passage is read for several kinds of fact
def _find_dates(text: str) -> list[Found]:
    out: list[Found] = []
    for m in _DATE_RE.finditer(text):
        d = parse_date(m.group(0))
        if d is not None:
            out.append(Found(d, m.start(), m.end()))
    return out


# --- durations ------------------------------------------------------------------------------------------

_UNITS = {
    "day": "days", "days": "days", "tag": "days", "tage": "days", "tagen": "days", "jour": "days", "jours": "days",
    "week": "weeks", "weeks": "weeks", "woche": "weeks", "wochen": "weeks", "semaine": "weeks", "semaines": "weeks",
    "month": "months", "months": "months", "monat": "months", "monate": "months", "monaten": "months",
    "mois": "months", "year": "years", "years": "years", "jahr": "years", "jahre": "years", "jahren": "years",
    "an": "years", "ans": "years", "année": "years", "années": "years", "annee": "years", "annees": "years",
    # Spanish, Italian, Dutch
    "día": "days", "días": "days", "dia": "days", "dias": "days", "giorno": "days", "giorni": "days",
    "dag": "days", "dagen": "days", "semana": "weeks", "semanas": "weeks", "settimana": "weeks",
    "settimane": "weeks", "weken": "weeks", "mes": "months", "meses": "months", "mese": "months", "mesi": "months",
    "maand": "months", "maanden": "months", "año": "years", "años": "years", "anno": "years", "anni": "years",
    "jaar": "years", "jaren": "years",
}  # fmt: skip
_UNIT = (
    r"(?P<unit>(?:calendar|business|working|consecutive)?\s*(?:"
    + "|".join(sorted(_UNITS, key=len, reverse=True))
    + r"))"
)
_NUMWORD = r"[A-Za-zÀ-ÿ]+(?:[- ][A-Za-zÀ-ÿ]+){0,2}"
_DURATION_RE = re.compile(
    # sixty (60) days / one (1) year's / 60 calendar days / twelve months / 3 Monate / trois (3) mois
    rf"(?:(?P<words>\b{_NUMWORD})\s*\(\s*(?P<paren>\d{{1,4}})\s*\)|(?P<digits>\b\d{{1,4}})|(?P<word>\b{_NUMWORD}))"
    rf"[\s-]*(?:\(\d{{1,4}}\)\s*)?{_UNIT}(?:'s|’s|')?(?![A-Za-zÀ-ÿ])",
    re.I,
)


@dataclass(frozen=True, order=True)
class Duration:
    """A period as a contract states it; months and years compare as months."""

    amount: int
    unit: str  # days | weeks | months | years

    @property
    def key(self) -> tuple[int, str]:
        if self.unit == "years":
            return (self.amount * 12, "months")
        if self.unit == "weeks":
            return (self.amount * 7, "days")
        return (self.amount, self.unit)

    def __str__(self) -> str:
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"


@cache
def number_word(word: str) -> int | None:
    """'sixty' -> 60, 'twenty-four' -> 24, 'zwölf' -> 12, 'trois' -> 3; None if not a number."""
    from text_to_num import text2num

    w = word.strip().lower()
    if w in ("a", "an", "one", "un", "une", "ein", "eine", "einen", "einem", "einer"):
        return 1
    for lang in ("en", "de", "fr", "nl", "es", "it"):
        try:
            n = text2num(w, lang)
        except ValueError:
            continue
        if n > 0:
            return int(n)
    return None


def find_durations(text: str) -> list[Found]:
    return list(_find_durations(text))  # a copy: the cached list is never handed out


@lru_cache(maxsize=4096)  # a passage is read for several kinds of fact
def _find_durations(text: str) -> list[Found]:
    out: list[Found] = []
    for m in _DURATION_RE.finditer(text):
        unit = _UNITS[m["unit"].split()[-1].lower()]
        start = m.start()
        if m["paren"]:
            n: int | None = int(m["paren"])
            start = m.start("words") + _last_words_offset(m["words"])
        elif m["digits"]:
            n = int(m["digits"])
        else:
            words = m["word"].replace("-", " ").split()
            n = None
            for k in range(len(words)):  # the longest tail that is a number: "within thirty"
                n = number_word(" ".join(words[k:]).replace(" ", "-") if k < len(words) - 1 else words[k])
                if n is None and k < len(words) - 1:
                    n = number_word(" ".join(words[k:]))
                if n is not None:
                    start = m.start("word") + m["word"].lower().find(words[k].lower())
                    break
        if n is not None and 0 < n < 10000 and not _not_a_period(text, m, n, start):
            out.append(Found(Duration(n, unit), start, m.end()))
    return out


_ARTICLE_ONE = frozenset({"a", "an", "un", "une", "ein", "eine", "einen", "einem", "einer", "uno", "una", "een"})
_EN_UNITS = frozenset({"day", "days", "week", "weeks", "month", "months", "year", "years"})
# Words after which "a year" / "ein Jahr" is a length of time ("for a year"), not "a year later" or
# "37 million passengers a year" (a rate).
_SPAN_WORDS = frozenset({
    "for", "within", "of", "in", "after", "during", "over", "about", "nearly", "almost", "first", "per",
    "für", "innerhalb", "binnen", "nach", "während", "über", "pour", "dans", "pendant", "durant", "après",
    "durante", "por", "en", "tras", "dentro", "voor", "gedurende", "na", "entro", "dopo",
})  # fmt: skip
_A_KIND = re.compile(r"\s+(?:[^\W\d_]+\s+)?(?:like|come|como|comme|wie|zoals)\b", re.I)
_NAMED_WAR = re.compile(r"\s+(?:War|Wars|Krieg|Guerra|Guerre)\b")
_WAR_OF = re.compile(r"\b(?:Guerra|Guerre|Guerra)\s+(?:de\s+(?:los\s+|las\s+)?|des\s+|dei\s+)$")


def _not_a_period(text: str, m: re.Match[str], n: int, start: int) -> bool:
    """Readings the period pattern allows but that are not periods: a year followed by the English or
    German word "an" ("in 1998 an ...", French "an" is one year only: two are "ans"), "a" or "un" as
    one where it is not an article of that unit's language ("a día de hoy") or not a length of time
    ("a year later", "an important year like 2001"), and a war's name ("the Seven Years' War", "la
    Guerra de los Siete Años")."""
    unit = m["unit"].split()[-1].lower()
    if unit == "an" and n != 1:
        return True
    if _NAMED_WAR.match(text, m.end()) or _WAR_OF.search(text[max(0, start - 30) : start]):
        return True
    words = (m["word"] or "").lower().split()
    before = re.findall(r"[^\W\d_]+", text[max(0, start - 30) : start].lower())
    # "will perhaps one day become": "one day" is "some day" unless a span word makes it a length of
    # time ("within one day")
    if words and words[-1] == "one" and unit == "day" and (not before or before[-1] not in _SPAN_WORDS):
        return True
    if words and words[-1] in _ARTICLE_ONE:
        article = words[-1]
        if article in ("a", "an") and unit not in _EN_UNITS:
            return True
        if _A_KIND.match(text, m.end()):  # "in un anno importante come il 2001": which year, not how long
            return True
        return not before or before[-1] not in _SPAN_WORDS
    return False


def _last_words_offset(words: str) -> int:
    """Where the number words begin inside 'notice of sixty' (the part before the digits)."""
    parts = words.split()
    for k in range(len(parts)):
        if number_word("-".join(parts[k:])) is not None or number_word(" ".join(parts[k:])) is not None:
            return words.find(parts[k])
    return len(words) - len(parts[-1]) if parts else 0


def parse_duration(text: str) -> Duration | None:
    found = find_durations(text)
    return found[0].value if found else None  # type: ignore[return-value]


# --- money ----------------------------------------------------------------------------------------------

_SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "C$": "CAD", "CA$": "CAD", "A$": "AUD"}
_CODES = "USD|EUR|GBP|CHF|CAD|AUD|JPY|SEK|NOK|DKK|PLN|CZK|HUF|CNY|HKD|SGD|INR|RMB"
_MULT = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "m": 1e6, "mm": 1e6, "bn": 1e9, "k": 1e3, "mio": 1e6}
_MULT |= {"mln": 1e6, "mrd": 1e9}
_NUM = r"\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_MULTS = r"(?:\s*(?P<mult>mio\.|mrd\.|(?:thousand|million|billion|mio|mrd|mln|mm|bn|m|k)\b))?"
# "30 Millionen Pfund", "37,6 Milliarden US-Dollar", "37.600 millones de dólares", "230 millions de
# dollars", "500 Pfund": a scale word of another language, and the currency as a word after the number. German
# "Billion" and Spanish "billón" are 10^12 (a "Milliarde" / "mil millones" is the English billion).
_MULT_WORDS = {
    "millionen": 1e6, "million": 1e6, "millions": 1e6, "mio": 1e6, "millones": 1e6, "millón": 1e6,
    "milioni": 1e6, "milione": 1e6, "miljoen": 1e6, "milliarden": 1e9, "milliarde": 1e9, "mrd": 1e9,
    "milliards": 1e9, "milliard": 1e9, "mil millones": 1e9, "miliardi": 1e9, "miliardo": 1e9, "miljard": 1e9,
    "billionen": 1e12, "billones": 1e12, "billón": 1e12, "tausend": 1e3, "mil": 1e3, "mille": 1e3,
    "billion": 1e9, "thousand": 1e3, "mln": 1e6,  # "billion" as the English word, as _MULT reads it
}  # fmt: skip
_CUR_WORDS = {
    "us-dollar": "USD", "dollar": "USD", "dollars": "USD", "dólares": "USD", "dólar": "USD", "dollari": "USD",
    "pfund": "GBP", "pfund sterling": "GBP", "pounds": "GBP", "pound": "GBP", "libras": "GBP", "libra": "GBP",
    "libras esterlinas": "GBP", "livres": "GBP", "livres sterling": "GBP", "sterline": "GBP", "pond": "GBP",
    "euro": "EUR", "euros": "EUR", "$": "USD", "€": "EUR", "£": "GBP", "usd": "USD", "eur": "EUR", "gbp": "GBP",
}  # fmt: skip
_WORDS_RE = re.compile(
    rf"(?P<amt>{_NUM})(?:\s+(?P<mult>"
    + "|".join(sorted(map(re.escape, _MULT_WORDS), key=len, reverse=True))
    + r")\.?\s+(?:(?:de|d['’]|di|van)\s*)?)?\s*(?P<cur>"
    + "|".join(sorted(map(re.escape, _CUR_WORDS), key=len, reverse=True))
    + r")(?![\w-])",
    re.I,
)
_MONEY_RE = re.compile(
    rf"(?:(?P<cur1>{_CODES}|US\$|C\$|CA\$|A\$|[$€£¥])\s?(?P<amt1>{_NUM}){_MULTS.replace('mult', 'mult1')}"
    rf"|(?P<amt2>{_NUM}){_MULTS.replace('mult', 'mult2')}\s?(?P<cur2>{_CODES}|€|\$|£|euros?|dollars|pounds)(?![\w-]))",
    re.I,
)


@dataclass(frozen=True)
class Money:
    currency: str
    amount: float

    def __str__(self) -> str:
        return f"{self.currency} {self.amount:,.2f}"


def _number(raw: str) -> float | None:
    s = raw.replace(" ", "").replace("'", "")
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?", s):  # 1.000.000,00 (European)
        s = s.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"\d+,\d{1,2}", s):  # 8500,50
        s = s.replace(",", ".")
    else:
        s = s.replace(",", "")
    try:
        return float(s)
    except ValueError:
        return None


def find_money(text: str) -> list[Found]:
    return list(_find_money(text))  # a copy: the cached list is never handed out


@lru_cache(maxsize=4096)  # a passage is read for several kinds of fact
def _find_money(text: str) -> list[Found]:
    out: list[Found] = []
    for m in _MONEY_RE.finditer(text):
        cur = (m["cur1"] or m["cur2"] or "").upper()
        cur = _SYMBOLS.get(cur, cur)
        cur = {"EURO": "EUR", "EUROS": "EUR", "DOLLARS": "USD", "POUNDS": "GBP", "RMB": "CNY"}.get(cur, cur)
        amount = _number(m["amt1"] or m["amt2"])
        mult = (m["mult1"] or m["mult2"] or "").lower().rstrip(".")
        if amount is None:
            continue
        out.append(Found(Money(cur, round(amount * _MULT.get(mult, 1), 2)), m.start(), m.end()))
    for m in _WORDS_RE.finditer(text):
        amount = _number(m["amt"])
        if amount is None or any(f.start <= m.start() < f.end or m.start() <= f.start < m.end() for f in out):
            continue
        scale = _MULT_WORDS[m["mult"].lower()] if m["mult"] else 1
        cur = _CUR_WORDS[re.sub(r"\s+", " ", m["cur"].lower())]
        out.append(Found(Money(cur, round(amount * scale, 2)), m.start(), m.end()))
    for m in _SPELLED_RE.finditer(text):  # "EUR five million", "cinq milliards d'euros"
        n = number_word(m["w1"] or m["w2"] or "")
        if n is None or any(f.start <= m.start() < f.end or m.start() <= f.start < m.end() for f in out):
            continue
        raw = (m["cur1"] or m["cur2"] or "").lower()
        cur = _SYMBOLS.get(raw, _CUR_WORDS.get(re.sub(r"\s+", " ", raw), raw.upper()))
        scale = _MULT_WORDS[re.sub(r"\s+", " ", (m["m1"] or m["m2"]).lower())]
        out.append(Found(Money(cur, round(n * scale, 2)), m.start(), m.end()))
    return sorted(out, key=lambda f: f.start)


_SCALE_WORDS = "|".join(sorted(map(re.escape, _MULT_WORDS), key=len, reverse=True))
# An amount in words, always with a scale word: "EUR five million", "five million euros", "cinq
# milliards d'euros" ("a few million euros" has no number and is not read).
_SPELLED_RE = re.compile(
    rf"(?:(?P<cur1>{_CODES}|€|\$|£)\s?(?P<w1>[^\W\d_]+(?:-[^\W\d_]+)?)\s+(?P<m1>{_SCALE_WORDS})(?![\w-])"
    rf"|\b(?P<w2>[^\W\d_]+(?:-[^\W\d_]+)?)\s+(?P<m2>{_SCALE_WORDS})\s+(?:(?:de|d['’]|di|van)\s*)?"
    rf"(?P<cur2>{'|'.join(sorted(map(re.escape, _CUR_WORDS), key=len, reverse=True))})(?![\w-]))",
    re.I,
)


# --- jurisdictions --------------------------------------------------------------------------------------

# Countries whose states or provinces have their own contract law (contracts choose "the laws of the
# State of Delaware", "the Province of Ontario", "the State of New South Wales", "England and Wales").
_FEDERAL = ("US", "CA", "AU", "GB", "IN", "MX", "MY", "AE", "CH", "BR", "NG", "DE")
# How a country's law is named by its adjective ("German law", "droit français"): pycountry has no
# demonyms, so the common ones are listed here.
_ADJECTIVES = {
    "american": "US", "british": "GB", "english": "GB-ENG", "scottish": "GB-SCT", "welsh": "GB-WLS",
    "german": "DE", "deutschem": "DE", "deutsches": "DE", "deutschen": "DE", "french": "FR", "français": "FR",
    "francais": "FR", "française": "FR", "dutch": "NL", "niederländischem": "NL", "belgian": "BE",
    "luxembourgish": "LU", "swiss": "CH", "schweizerischem": "CH", "suisse": "CH", "austrian": "AT",
    "österreichischem": "AT", "irish": "IE", "italian": "IT", "italiano": "IT", "spanish": "ES", "español": "ES",
    "portuguese": "PT", "danish": "DK", "swedish": "SE", "norwegian": "NO", "finnish": "FI", "polish": "PL",
    "czech": "CZ", "hungarian": "HU", "greek": "GR", "estonian": "EE", "latvian": "LV", "lithuanian": "LT",
    "canadian": "CA", "australian": "AU", "japanese": "JP", "chinese": "CN", "indian": "IN", "israeli": "IL",
    "singaporean": "SG", "singapore": "SG", "hong kong": "HK",
    "nederlands": "NL", "nederlandse": "NL", "néerlandais": "NL", "allemand": "DE", "anglais": "GB-ENG",
    "belgisch": "BE", "belge": "BE", "luxembourgeois": "LU", "italiana": "IT", "española": "ES",
}  # fmt: skip
# Languages that write a country's adjective in lower case ("deutschem Recht", "droit français").
_LOWERCASE_ADJECTIVES = {
    "deutschem", "deutsches", "deutschen", "français", "francais", "française", "niederländischem", "schweizerischem",
    "suisse", "österreichischem", "italiano", "italiana", "español", "española", "belge", "luxembourgeois",
    "nederlands", "nederlandse", "néerlandais", "allemand", "anglais", "belgisch",
}  # fmt: skip
_EXTRA_NAMES = {
    "england and wales": "GB-EW", "england & wales": "GB-EW", "united states of america": "US", "usa": "US",
    "u.s.a.": "US", "united states": "US", "u.s.": "US", "uk": "GB", "u.k.": "GB", "great britain": "GB",
    "holland": "NL", "deutschland": "DE", "frankreich": "FR", "république française": "FR",
    "hong kong": "HK", "korea": "KR", "south korea": "KR", "russia": "RU", "taiwan": "TW",
}  # fmt: skip


@dataclass(frozen=True)
class Jurisdiction:
    code: str  # ISO 3166-1 alpha-2, or ISO 3166-2 for a state or province ("US-DE"); GB-EW for England and Wales
    name: str  # "Delaware", "Ontario", "Germany", "England and Wales"
    country: str  # the country's common name

    @property
    def is_subdivision(self) -> bool:
        return "-" in self.code

    def __str__(self) -> str:
        return f"{self.name}, {self.country}" if self.is_subdivision and self.country not in self.name else self.name


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).casefold()
    return " ".join(re.sub(r"[^\w&.' -]", " ", s).split())


@cache
def _gazetteer() -> tuple[dict[str, Jurisdiction], re.Pattern[str]]:
    import pycountry

    by_name: dict[str, Jurisdiction] = {}

    def country(code: str) -> Jurisdiction:
        c = pycountry.countries.get(alpha_2=code)
        return Jurisdiction(code, getattr(c, "common_name", None) or c.name, getattr(c, "common_name", None) or c.name)

    import gettext

    # Country names in the languages Sovra reads, from pycountry's own ISO 3166 translations.
    translations = [gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang], fallback=True)
                    for lang in _LANGS if lang != "en"]  # fmt: skip
    for c in pycountry.countries:
        j = country(c.alpha_2)
        names = {c.name, getattr(c, "official_name", None), getattr(c, "common_name", None)} - {None}
        for n in list(names):
            names |= {t.gettext(str(n)) for t in translations}
        for n in names:
            by_name.setdefault(_fold(str(n)), j)
    for code in _FEDERAL:
        home = country(code)
        for s in pycountry.subdivisions.get(country_code=code) or []:
            if s.parent_code:  # counties and districts inside a state are courts' places, not laws
                continue
            name = re.sub(r"\s*\[.*?\]|\s*\(.*?\)", "", s.name).strip()
            j = Jurisdiction(s.code, name, home.name)
            if code == "DE":  # German contracts name German law, not a Land's; keep Länder as places only
                continue
            by_name[_fold(name)] = j  # a US state wins over a country of the same name (Georgia)
    by_name["england and wales"] = by_name["england & wales"] = Jurisdiction(
        "GB-EW", "England and Wales", "United Kingdom"
    )
    for k, code in {**_EXTRA_NAMES, **_ADJECTIVES}.items():
        if code == "GB-EW":
            continue
        j = next(v for v in by_name.values() if v.code == code) if "-" in code else country(code)
        by_name.setdefault(_fold(k), j) if k in _ADJECTIVES else by_name.__setitem__(_fold(k), j)
    names = sorted(by_name, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w])", re.I)
    return by_name, pattern


def find_jurisdictions(text: str) -> list[Found]:
    """Every country, state or province named in ``text`` ("the State of Delaware", "English law")."""
    by_name, pattern = _gazetteer()
    out: list[Found] = []
    for m in pattern.finditer(text):
        j = by_name.get(_fold(m.group(0)))
        if j is None:
            continue
        word = m.group(0)
        # Names count when written capitalised; adjectives of some languages are not ("droit français").
        if not word[0].isupper() and _fold(word) not in _LOWERCASE_ADJECTIVES:
            continue
        out.append(Found(j, m.start(), m.end()))
    return out


def jurisdiction(text: str) -> Jurisdiction | None:
    """The jurisdiction a phrase names ("the laws of Texas" -> Texas); a state wins over its country."""
    found = [f.value for f in find_jurisdictions(text)]
    return merge_jurisdictions(found)  # type: ignore[arg-type]


def merge_jurisdictions(found: list[Jurisdiction]) -> Jurisdiction | None:
    """'the Province of Ontario and the federal laws of Canada' -> Ontario; None if they disagree."""
    if not found:
        return None
    if {j.code for j in found} == {"GB-ENG", "GB-WLS"}:
        return Jurisdiction("GB-EW", "England and Wales", "United Kingdom")
    subs = {j for j in found if j.is_subdivision}
    countries = {j for j in found if not j.is_subdivision}
    if len(subs) > 1:
        return None
    if subs:
        (s,) = subs
        if all(c.name == s.country for c in countries):
            return s
        return None
    return next(iter(countries)) if len(countries) == 1 else None


def same_jurisdiction(a: Jurisdiction | str, b: Jurisdiction | str) -> bool:
    ja = a if isinstance(a, Jurisdiction) else jurisdiction(str(a))
    jb = b if isinstance(b, Jurisdiction) else jurisdiction(str(b))
    if ja is None or jb is None:
        return _fold(str(a)) == _fold(str(b))
    if ja.code == jb.code:
        return True
    ew = {"GB-EW", "GB-ENG"}
    return ja.code in ew and jb.code in ew
