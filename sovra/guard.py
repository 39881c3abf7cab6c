"""Defences against indirect prompt injection: retrieved text is data, never instructions.

Two small, auditable checks, used around every agent:
- ``scan_for_injection(text)`` flags passages that try to instruct the model (override its
  instructions, reveal the system prompt, call tools, send data somewhere, render remote images).
  Flagged passages stay retrievable (a policy *about* phishing may quote such text) but the run
  records each finding as a ``security.injection_suspected`` audit step.
- ``sanitize_answer(text, allowed_urls)`` removes what could exfiltrate data when an answer is
  rendered: markdown images, HTML tags, and links to any URL that is not one of the run's own
  citations. A chat front end that renders markdown then cannot be made to fetch
  ``https://evil.example/?q=<secret>``.

Pattern lists are deliberately plain regular expressions: an auditor can read them, and a
fine-tuned classifier can be added behind the same functions later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_FLAGS = re.IGNORECASE | re.DOTALL

INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "override_instructions",
        re.compile(
            r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|your|the)\b"
            r".{0,20}\b(instructions?|prompts?|rules|guidelines|directions)\b",
            _FLAGS,
        ),
    ),
    ("new_instructions", re.compile(r"\b(new|updated|real|actual)\s+(system\s+)?instructions?\s*[:\-]", _FLAGS)),
    ("role_switch", re.compile(r"(^|\n)\s*(system|assistant|developer)\s*:|<\|?(im_start|system)\|?>", _FLAGS)),
    ("persona", re.compile(r"\byou are (now|no longer)\b|\bact as (an?|the) \w+", _FLAGS)),
    (
        "reveal_prompt",
        re.compile(r"\b(reveal|print|show|repeat|output)\b.{0,30}\b(system prompt|instructions|hidden prompt)", _FLAGS),
    ),
    (
        "tool_call",
        re.compile(
            r"\b(call|invoke|run|use|execute)\b.{0,20}\b(the\s+)?(tool|function|open_case|query_ledger|api)\b", _FLAGS
        ),
    ),
    (
        "exfiltration",
        re.compile(
            r"\b(send|email|e-mail|forward|upload|post|exfiltrate|transmit)\b.{0,60}"
            r"(\b[\w.+-]+@[\w-]+\.[\w.]+\b|https?://|\bto (an? )?(external|outside|personal)\b)",
            _FLAGS,
        ),
    ),
    ("remote_image", re.compile(r"!\[[^\]]*\]\(\s*https?://|<img\b[^>]*\bsrc\s*=", _FLAGS)),
)


@dataclass(frozen=True)
class Finding:
    kind: str
    excerpt: str  # the matched text, cut to 120 characters, for the audit record


def scan_for_injection(text: str) -> list[Finding]:
    """Every instruction-like pattern in ``text`` (one finding per kind)."""
    found = []
    for kind, pattern in INJECTION_PATTERNS:
        m = pattern.search(text)
        if m:
            found.append(Finding(kind, " ".join(m.group(0).split())[:120]))
    return found


# Image descriptions may hold one level of brackets, as CommonMark allows: ![a [b] c](url).
_MD_IMAGE = re.compile(r"!\[(?:[^\[\]]|\[[^\]]*\])*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\(\s*([^)\s]+)[^)]*\)")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
# Scheme URLs, www. hosts, and protocol-relative URLs (//host.tld/...) that a browser would fetch.
_BARE_URL = re.compile(
    r"\b(?:https?|ftp)://[^\s<>()\"']+|\bwww\.[^\s<>()\"']+|(?<![\w:/])//[\w-]+(?:\.[\w-]+)+[^\s<>()\"']*",
    re.IGNORECASE,
)


def _norm(url: str) -> str:
    return url.rstrip(".,;:!?").rstrip("/")


def sanitize_answer(text: str, allowed_urls: Iterable[str] = ()) -> tuple[str, list[str]]:
    """The answer with images, HTML and links to non-cited URLs removed, and what was removed.

    Repeated until nothing changes: removing ``<b>`` from ``htt<b>p://x`` must not leave a URL."""
    allowed = {_norm(u) for u in allowed_urls if u}
    removed: list[str] = []
    for _ in range(8):
        cleaned = _sanitize_once(text, allowed, removed)
        if cleaned == text:
            break
        text = cleaned
    return text, removed


def _sanitize_once(text: str, allowed: set[str], removed: list[str]) -> str:

    def drop(match: re.Match[str]) -> str:
        removed.append(match.group(0))
        return ""

    text = _MD_IMAGE.sub(drop, text)

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if _norm(url) in allowed:
            return match.group(0)
        removed.append(url)
        return label

    text = _MD_LINK.sub(link, text)
    text = _HTML_TAG.sub(drop, text)

    def bare(match: re.Match[str]) -> str:
        url = match.group(0)
        if _norm(url) in allowed:
            return url
        removed.append(url)
        return "[link removed]"

    return _BARE_URL.sub(bare, text)


_HOLD_MAX = 2048


class StreamSanitizer:
    """``sanitize_answer`` for an answer that is streamed token by token.

    Sanitising each token alone is not enough: ``htt`` + ``p://evil.example`` are harmless apart
    and a URL together, and a client renders the concatenation. So text is released only up to a
    point where nothing can still grow into a URL, image, link or tag: never inside a run of
    non-space characters (every URL lies inside one), never after an unclosed ``<`` or an
    unresolved ``[``/``![`` (a link or an image until proven otherwise). Each released piece is
    sanitised as a whole; what was held is released when the node that streamed it finishes
    (``flush``). Plain text streams with a delay of at most one word and comes out unchanged.
    Links are kept only to ``allowed_urls``; the citations are not known while tokens flow, so the
    runtime passes none, and the final answer (sanitised with its citations) carries the links.
    """

    def __init__(self, allowed_urls: Iterable[str] = ()) -> None:
        self._allowed = list(allowed_urls)
        self._pending = ""
        self.removed: list[str] = []

    def feed(self, text: str) -> str:
        """Take the next token; return the text that is safe to show now (maybe empty)."""
        self._pending += text
        cut = _safe_cut(self._pending)
        if len(self._pending) - cut > _HOLD_MAX:  # an opener that never closes: stop waiting
            cut = len(self._pending)
        return self._release(cut)

    def flush(self) -> str:
        """Everything still held, sanitised (the end of a streamed answer)."""
        return self._release(len(self._pending))

    def _release(self, cut: int) -> str:
        out, self._pending = self._pending[:cut], self._pending[cut:]
        if not out:
            return ""
        clean, removed = sanitize_answer(out, self._allowed)
        self.removed += removed
        return clean


def _closing_bracket(text: str, i: int) -> int:
    """Where the ``[`` at ``i`` closes, counting nested brackets ("![a [b] c](...)" is one image)."""
    depth = 0
    for k in range(i, len(text)):
        if text[k] == "[":
            depth += 1
        elif text[k] == "]":
            depth -= 1
            if depth == 0:
                return k
    return -1


def _hold_from(text: str, k: int, spans: list[tuple[int, int]]) -> int:
    """Where to stop releasing when something at ``k`` must wait: the start of the run of non-space
    characters holding ``k`` ("www." + "![..." is sanitised as one run), and never inside a construct
    already seen (a tag's own spaces are not word breaks)."""
    while True:
        start = max(text.rfind(c, 0, k) for c in " \t\r\n") + 1
        inside = [cs for cs, ce in spans if cs < start < ce]
        if not inside:
            return start
        k = min(inside)


def _safe_cut(text: str) -> int:
    """The length of the longest prefix of ``text`` that no later token can turn into markup."""
    cut = max(text.rfind(c) for c in " \t\r\n") + 1  # never split a run of non-space characters
    spans: list[tuple[int, int]] = []
    i = 0
    while i < cut:
        c = text[i]
        start, end = i, i + 1
        if c == "<":
            close = text.find(">", i)
            if close < 0:
                return _hold_from(text, start, spans)
            end = close + 1
        elif c == "[":
            start = i - 1 if i > 0 and text[i - 1] == "!" else i
            close = _closing_bracket(text, i)
            if close < 0 or close + 1 >= len(text):
                return _hold_from(text, start, spans)  # may still be followed by "(url)"
            if text[close + 1] == "(":
                paren = text.find(")", close)
                if paren < 0:
                    return _hold_from(text, start, spans)
                end = paren + 1
            else:
                end = close + 1
        if end > cut:  # a construct is released whole, with the word it ends in
            return _hold_from(text, start, spans)
        if end - start > 1:
            spans.append((start, end))
        i = end
    return cut
