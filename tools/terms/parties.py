"""The parties to an agreement, with their roles, read from its opening ("by and between A (the
"Supplier") and B, a Delaware corporation ("Buyer")") or from a "Parties" row of a term sheet.

A name is the text before a party's description: its role in quotes and parentheses, ", a <place>
corporation", an address, or the next party. Redacted names ("[***]") are skipped, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sovra.tools.terms.fields import Reading, _mapped, extractor
from sovra.tools.terms.layout import Passage

_BETWEEN = re.compile(
    r"\b(?:by\s+and\s+(?:between|among)|between|among|amongst|entre|zwischen)\b\s*:?|\bparties\s*:", re.I
)
_ROLE = re.compile(
    r"\(\s*[^()\"“”]{0,60}?[\"“']+(?P<role>[^\"”'()]{2,60})[\"”']*[^()]{0,80}\)"
    r"|\(\s*(?P<abbr>[A-Z][A-Z0-9&.-]{1,15})\s*\)",  # an unquoted short name: "(MICOA)"
)
_SUFFIX = (
    r"(?:Inc|Incorporated|Corp|Corporation|Company|Co|LLC|L\.L\.C|Ltd|Limited|LP|L\.P|LLP|L\.L\.P|PLC|plc|GmbH|AG|SE|"
    r"S\.?A|N\.?V|B\.?V|S\.p\.A|SpA|SAS|SARL|S\.à\s?r\.l|Pte|Pty|KG|KGaA|AB|ASA|A/S|Oy|Trust|Bank|LLLP|S\.?L|S\.?R\.?L)\b\.?"
)
# A description that follows a name: ", a Delaware corporation", ", with offices at", ", having its ..."
_DESCRIPTION = re.compile(
    r",?\s*(?:\(\s*)?(?:\ban?\s+(?:[A-Z][\w.-]*\s+){0,4}(?:corporation|company|limited|partnership|association|"
    r"organi[sz]ation|entity|individual|bank|trust|body|société|gesellschaft|national)|\ba\s+(?:corporation|company)|"
    r"(?:organi[sz]ed|incorporated|existing|formed|registered)\b|with\s+(?:its|a|an)\s+(?:principal|registered|"
    r"business|head)|having\s+(?:its|a|an)|located\s+at|whose\s+(?:registered|principal)|of\s+\d|residing|"
    r"domiciled|\d{2,}\s+[A-Z]|\(?(?:hereinafter|each|collectively|together)\b|mit\s+Sitz|dont\s+le\s+siège)",
    re.I,
)
_SPLIT = re.compile(r"\s*(?:;|,?\s+and\s+|,?\s+und\s+|,?\s+et\s+|\s*&\s+(?=[A-Z][a-z]+\s+[A-Z]))\s*", re.I)
_NOISE = re.compile(r"^(?:the|and|or|each|of|by|its|their)\s+", re.I)
_REDACTED = re.compile(r"\[\s*[*\s]*\]|\*{3}|\[[^\]]*redact", re.I)
_GENERIC = re.compile(
    r"^(?:the\s+)?(?:parties|party|company|licensee|licensor|supplier|customer|buyer|seller|agent|distributor|"
    r"undersigned|following|persons?|each|entities|affiliates?|it|they|this\s+agreement|agreement)$",
    re.I,
)


def _clean(name: str) -> str:
    name = name.rsplit(":", 1)[-1]  # "Dear Gianluca: Kiromic, Inc" -> the name after the salutation
    name = name.strip(" ,.:;\"“”'()[]*")
    name = re.sub(r"^(?:[a-z][\w'’-]*\s+)+", "", name.strip())  # "to retain John Smith" -> "John Smith"
    # "SERVICES AGREEMENT Synchron" (a title run into the first name): keep what follows the title.
    name = re.sub(r"^.*\b(?:AGREEMENT|CONTRACT|Agreement|Contract)\s+(?=[A-Z])", "", name)
    name = name.strip(" ,.:;\"“”'()[]")
    name = _NOISE.sub("", name)
    name = re.sub(r"^(?:and|&)\s+", "", name, flags=re.I)
    name = re.sub(rf"({_SUFFIX})[\s,]*$", r"\1", name).strip(" ,;:")
    if re.search(rf"\b{_SUFFIX}$", name) and not name.endswith("."):
        suffix_dot = re.search(r"\b(?:Inc|Corp|Co|Ltd|L\.P|S\.A|N\.V|B\.V|L\.L\.C)$", name)
        if suffix_dot:
            name += "."
    return " ".join(name.split())


def _plausible(name: str) -> bool:
    words = name.split()
    if not 1 <= len(words) <= 12 or len(name) < 2 or _GENERIC.match(name) or _REDACTED.search(name):
        return False
    if re.search(r"\b(?:dated|effective|agreement|hereby|pursuant|\d{4})\b", name, re.I):
        return False
    caps = sum(1 for w in words if w[:1].isupper() or w[:1].isdigit())
    return caps >= max(1, len(words) // 2) and bool(re.search(r"[A-Za-z]{2}", name))


def _has_legal_form(name: str) -> bool:
    """The name ends in a legal form ("Inc.", "GmbH", "Corporation Limited"), in any case."""
    return bool(re.search(rf"\b{_SUFFIX}$", name, re.I))


def entity_like(name: str) -> bool:
    """A company (legal form) or a person or firm name of a few capitalised words."""
    if _has_legal_form(name) or re.search(r"\b(?:Company|Corporation|Limited|Bank|Group|Agency|Trust)\b", name, re.I):
        return True
    words = name.split()
    return 1 <= len(words) <= 8 and all(
        w[:1].isupper() or w[:1].isdigit() or w.lower() in ("of", "and", "&", "de", "du", "der", "für", "the")
        for w in words
    )


def _name_before(segment: str) -> str:
    """The name at the start of a party's segment, before its description."""
    segment = segment.strip()
    m = _DESCRIPTION.search(segment)
    if m and m.start() == 0 and segment[:1].isdigit():  # "2205925 Ontario Limited": a name, not an address
        m = _DESCRIPTION.search(segment, len(re.match(r"\d+", segment).group(0)))  # type: ignore[union-attr]
    if m and m.start() <= 1:
        # ", a Pennsylvania corporation, Gulf Houghton Ltd.": the previous party's description first.
        rest = re.search(r",\s+(?=[A-Z0-9])", segment[m.end() :])
        if rest is None:
            return ""
        segment = segment[m.end() + rest.end() :]
        m = _DESCRIPTION.search(segment)
    head = segment[: m.start()] if m and m.start() > 1 else segment
    # The name ends at its legal form, and a legal form may take several words ("GOCL Corporation
    # Limited", "Acme Company, Inc."): keep the whole run of them.
    m2 = re.match(rf"(.+?\b{_SUFFIX}(?:,?\s+{_SUFFIX})*)(?=[\s,(]|$)", head)
    if m2 and len(m2.group(1)) >= 3:
        head = m2.group(1)
    return _clean(head)


def _generic_role(role: str) -> bool:
    """A defined term that names the document or a thing, not a party ("Agreement", "Effective Date")."""
    return bool(
        re.fullmatch(
            r"(?:the\s+)?(?:\w+\s+)?(?:date|agreement|term|services?|territory|products?|premises)", role, re.I
        )
    )


def parse_parties(text: str) -> list[tuple[str, str]]:
    """(name, role) for each party named in an opening sentence or a 'Parties' row."""
    m = _BETWEEN.search(text)
    first_role = next((r for r in _ROLE.finditer(text) if not _generic_role((r["role"] or r["abbr"]).strip())), None)
    if m and first_role and m.start() > first_role.start():
        m = None  # parties defined before any "between": that later "between" is about something else
    seg = text[m.end() :] if m else text
    seg = re.split(r"\bWHEREAS\b|\bRECITALS?\b|\bW\s?I\s?T\s?N\s?E\s?S\s?S\s?E\s?T\s?H\b|\bNOW,?\s+THEREFORE\b", seg)[0]
    out: list[tuple[str, str]] = []
    roles = list(_ROLE.finditer(seg))
    if roles:
        prev = 0
        for rm in roles:
            piece = seg[prev : rm.start()]
            prev = rm.end()
            # "A, a Delaware corporation, and B ("Both")": the last name before the role owns it.
            parts = [x for x in re.split(r"\s*(?:;|,?\s+and\s+(?=[A-Z\[]))\s*", piece) if x.strip()]
            names = [n for n in (_name_before(x) for x in parts) if _plausible(n)]
            role = (rm["role"] or rm["abbr"]).strip()
            if _generic_role(role):
                prev = rm.end()
                continue
            if re.search(r"part(?:y|ies)|collectively|each", role, re.I) and not names:
                continue
            for n in names[:-1]:
                out.append((n, ""))
            if names:
                out.append((names[-1], role))
        tail = seg[prev:]
        if re.match(r"\s*(?:,\s*)?(?:and|&)\s+", tail):
            n = _name_before(re.sub(r"^\s*(?:,\s*)?(?:and|&)\s+", "", tail))
            if _plausible(n):
                out.append((n, ""))
    else:
        for piece in _SPLIT.split(seg)[:6]:
            n = _name_before(piece)
            if _plausible(n):
                out.append((n, ""))
    seen: set[str] = set()
    uniq: list[tuple[str, str]] = []
    for n, role in out:
        k = n.casefold()
        if k not in seen:
            seen.add(k)
            uniq.append((n, role))
    return uniq


def party_key(name: str) -> str:
    """A name without case, punctuation or legal form: 'Acme Holdings, Inc.' -> 'acme holdings'."""
    n = re.sub(rf"[,\s]+{_SUFFIX}", " ", name)
    n = re.sub(r"[^\w\s]", " ", n.casefold())
    return " ".join(w for w in n.split() if w not in ("the", "inc", "corp", "ltd", "llc", "co"))


def same_party(a: str, b: str) -> bool:
    ka, kb = party_key(a), party_key(b)
    if not ka or not kb:
        return False
    if ka == kb or ka.startswith(kb + " ") or kb.startswith(ka + " "):
        return True
    ta, tb = set(ka.split()), set(kb.split())
    return len(ta & tb) >= max(1, min(len(ta), len(tb)) * 2 // 3) and (ta <= tb or tb <= ta)


_OPENING_BETWEEN = 30  # "between" further down is about something else
_OPENING = 60  # passages searched for the opening (a cover page and a table of contents may come first)
_PREAMBLE_ROLES = 8  # without "between", parties defined by role only count near the top
_WINDOW = 8  # passages joined: "BETWEEN" / name / "AND" / name are often lines of their own


# The English "parties" block: "(1) ACME LIMITED (company no 123) whose registered office is at ...".
_REGISTERED = re.compile(
    r"^\W*(?:\(\d\)\s*|\d\.\s+)?(?P<name>[A-Z][\w&.,'’ -]{1,80}?\b(?:LIMITED|Limited|PLC|plc|LTD|Ltd|LLP|GmbH|AG|SE|"
    r"S\.A\.|B\.V\.|N\.V\.|INC|Inc)\.?)\s*(?i:\(\s*(?:company|registered)\s+(?:no|number)|,?\s+(?:a\s+company\s+)?"
    r"(?:incorporated|registered)\s+(?:and\s+registered\s+)?in\b|,?\s+whose\s+registered\s+office)",
)
_AND_LINE = re.compile(r"^\W*(?:and|und|et|y|e)\W*$", re.I)


def _cover_parties(head: list[Passage]) -> tuple[Passage, list[tuple[str, str]]] | None:
    """A cover page that lists the parties on lines of their own: "A" / "AND" / "B" (/ "AND" / "C")."""
    for i in range(1, min(len(head) - 1, 20)):
        if not _AND_LINE.match(head[i].text):
            continue
        names = [head[i - 1].text]
        k = i
        while k + 1 < len(head) and _AND_LINE.match(head[k].text):
            names.append(head[k + 1].text)
            k += 2
        names = [_clean(re.sub(r"^(?:between|by\s+and\s+between|among)\W*", "", n, flags=re.I)) for n in names]
        if len(names) >= 2 and all(_plausible(n) and entity_like(n) and len(n) < 90 for n in names):
            return head[i - 1], [(n, "") for n in names]
    return None


def _registered_block(head: list[Passage]) -> tuple[Passage, list[tuple[str, str]]] | None:
    """Consecutive entries of an English parties block, each a company with its registration."""
    for i, p in enumerate(head):
        m = _REGISTERED.match(p.text)
        if not m:
            continue
        names = [_clean(m["name"])]
        for q in head[i + 1 : i + 6]:
            mm = _REGISTERED.match(q.text)
            if mm:
                names.append(_clean(mm["name"]))
            elif len(q.text) > 40:
                break
        if len(names) >= 2:
            return p, [(n, "") for n in dict.fromkeys(names)]
    return None


def _full_name(short: str, head: list[Passage], defined: dict[str, str]) -> str:
    """The full name a defined short name stands for, from where the document defines it: "McDATA
    CORPORATION ("McDATA")" (``defined``: role -> name with a legal form), or a cover table's role
    label before the name ("RESELLER" MTI TECHNOLOGY CORPORATION). Only a name with a legal form
    counts; otherwise ""."""
    if short.casefold() in defined:
        return defined[short.casefold()]
    label = re.compile(
        rf"(?i:[\"“']{re.escape(short)}[\"”']?|\b{re.escape(short)})\s+"
        rf"(?P<name>[A-Z][\w&'’-]*(?:[ ,]+[\w&'’.-]+){{0,6}}?[ ,]+(?i:{_SUFFIX}))(?=[\s,(]|$)"
    )
    for p in head:
        m = label.search(p.text)
        if m and _plausible(_clean(m["name"])):
            return _clean(m["name"])
    return ""


def _short_names(text: str) -> list[tuple[str, str]]:
    """The names of an opening that uses short names only: "between McDATA and Reseller." (a role word
    such as "Reseller" included, which parse_parties rightly drops as a name)."""
    m = _BETWEEN.search(text)
    if not m:
        return []
    seg = re.split(r"[.;:](?:\s|$)|\(", text[m.end() :])[0]
    names = [_clean(x) for x in _SPLIT.split(seg) if x.strip()]
    ok = all(1 <= len(n.split()) <= 3 and n[:1].isupper() for n in names)
    return [(n, "") for n in names] if ok and len(names) >= 2 else []


def _resolved(found: list[tuple[str, str]], head: list[Passage], real: Callable[[str], bool]) -> list[tuple[str, str]]:
    """An opening that names the parties by their short names only ("between McDATA and Reseller"):
    each short name replaced by the full name it was defined for; [] if any cannot be resolved."""
    defined: dict[str, str] = {}
    for p in head:  # the head's definitions, read once for every short name
        for n, role in parse_parties(p.text):
            if role and n.casefold() != role.casefold() and _has_legal_form(n):
                defined.setdefault(role.casefold(), n)
    out: list[tuple[str, str]] = []
    for n, role in found:
        if _has_legal_form(n):
            if not real(n):
                return []
            out.append((n, role))
        elif full := _full_name(n, head, defined):
            out.append((full, role or n))
        else:
            return []  # a short name left as it is would be a wrong party ("Reseller")
    return out


@extractor("parties", "Parties")
def parties(ps: list[Passage]) -> Reading:
    """The first opening in the document that names two or more parties (a cover page's "BETWEEN A
    AND B" counts), or a term sheet's "Parties" row."""
    r = Reading("parties")
    head = ps[:_OPENING]
    defined = {(m["role"] or m["abbr"]).strip().casefold() for p in head for m in _ROLE.finditer(p.text)}

    def real(n: str) -> bool:  # a defined short name ("Agency", "MICOA") is not a party's name
        return entity_like(n) and n.casefold() not in defined

    rows = [
        p
        for p in ps
        if p.label and re.search(r"^(?:the\s+)?part(?:y|ies)$|vertragspartei|^entre", p.label.strip(), re.I)
    ]
    cover = _cover_parties(head) or _registered_block(head)
    if cover and not rows:
        p, found = cover
        r.cued.append(p)
        show = "; ".join(n for n, _ in found)
        norm = "; ".join(sorted(party_key(n) for n, _ in found))
        r.candidates.append(_mapped(found, norm, show, p, 4.0))
        return r
    for i, p in enumerate(rows[:1] or head):  # a "Parties" row of a term sheet says it outright
        labelled = bool(rows)
        between = bool(_BETWEEN.search(p.text)) and i < _OPENING_BETWEEN
        if not (labelled or between or (i < _PREAMBLE_ROLES and _ROLE.search(p.text))):
            continue
        if re.search(r"\bdispute|conflict|entire\s+agreement|relationship|independent\s+contractor", p.text, re.I):
            continue
        if re.match(r"^\W*[\"“][^\"”]{1,60}[\"”]\s+(?:means|shall\s+mean|has\s+the\s+meaning)", p.text, re.I):
            continue  # a definition ("Agreement" means ... made between SEV and DCL) names no party in full
        if labelled:
            text = re.sub(r"^[^|:]*[|:]\s*", "", p.text, count=1)
            found = parse_parties(text)
        else:
            window = " ".join(q.text for q in ps[i : i + _WINDOW])[:2500]
            if not between and len(_ROLE.findall(window)) < 2:
                continue
            # "... the deal between A and B.": the sentence alone names them all; otherwise the names
            # run on over the next lines ("BETWEEN:" / name / "AND" / name, or long addresses).
            found = [(n, role) for n, role in parse_parties(p.text) if real(n)] if between else []
            if len(found) < 2 and between:
                found = _resolved(_short_names(p.text), head, real) or found
            if len(found) < 2:
                found = [(n, role) for n, role in parse_parties(window) if real(n)]
        r.cued.append(p)
        if len(found) < 2 and not labelled:
            continue
        names = [n for n, _ in found]
        show = "; ".join(f"{n} ({role})" if role else n for n, role in found)
        norm = "; ".join(sorted(party_key(n) for n in names))
        r.candidates.append(_mapped(found, norm, show, p, (6.0 if labelled else 4.0) - i * 0.01))
        break
    return r
