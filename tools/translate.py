"""Translate a passage or a document (PDF, DOCX, Markdown, text) between English, French, German,
Dutch, Italian and Spanish with the served ``translation`` model route, then check every fact.

The route: ``translation.<from>-<to>`` (``[routes."translation.en-fr"]`` in the routes file: a LoRA
adapter for that pair) when the routes file has one, else ``translation``. Both must point at a
served model (a ``base_url``): the bundled local model cannot translate, so without such a route
translation stops with a ConfigError that says what to configure. Calls go through the gateway,
so only the configured, allow-listed hosts are ever contacted.

A document is translated segment by segment (a paragraph, or part of a long one). Each finished
segment is appended to a state file next to the output (``<out>.state.jsonl``, one JSON line per
segment, fsynced) keyed by its text, the language pair, the glossary and the route's model, so a
rerun after a crash or an interrupt translates only what is missing. Every run is audited like a
question: ``run.start``, one ``model.call`` per translated segment, one ``translate.segment``
record per segment (model or adapter, route, prompt and output hashes, the checker's result), and
``run.end`` with the totals. The checker (:mod:`sovra.tools.translation_check`) marks each segment
preserved, changed (with both values) or could not check.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sovra.config import Settings
from sovra.errors import ConfigError, InputError, SovraError
from sovra.routes import RoutesConfig
from sovra.tools.translation_check import (
    LANGS,
    Glossary,
    GlossaryTerm,
    SegmentCheck,
    check_segment,
    learn_defined_terms,
    relevant_terms,
)

LANGUAGES = {"en": "English", "fr": "French", "de": "German", "nl": "Dutch", "it": "Italian", "es": "Spanish"}
ROUTE = "translation"
MAX_SEGMENT_CHARS = 1500
WORKERS = 4  # segments in flight at once (the route's max_concurrency still caps the server's load)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[A-ZÀ-Ý0-9(«\"“])")

assert tuple(LANGUAGES) == LANGS


# --------------------------------------------------------------------------------- routes


def translation_route(routes: RoutesConfig, source: str, target: str) -> str:
    """The route name that translates ``source`` -> ``target``: the pair's own, else ``translation``.
    Raises ConfigError when neither is configured, or when one would reach the bundled local model."""
    for name in (f"{ROUTE}.{source}-{target}", ROUTE):
        if name not in routes.routes:
            continue
        route = routes.routes[name]
        for hop in (name, *route.fallbacks):
            if routes.routes[hop].is_local:
                raise ConfigError(
                    f"route {hop!r} (for translation {source}->{target}) is the bundled local model, "
                    "which cannot translate",
                    hint=f"point routes.{hop} at a served model (base_url of your vLLM server) "
                    "or remove it from the translation route's fallbacks",
                )
        return name
    raise ConfigError(
        f"no served model route for translation {source}->{target}: the routes file has neither "
        f"'{ROUTE}.{source}-{target}' nor '{ROUTE}'",
        hint="add [routes.translation] with model and base_url (your vLLM server) to the routes file "
        "named by SOVRA_ROUTES_FILE; see docs/translation.md",
    )


def _lang(code: str | None, what: str) -> str:
    c = (code or "").lower().strip()
    if c not in LANGUAGES:
        raise InputError(f"unsupported {what} language {code!r}", hint=f"use one of: {', '.join(LANGUAGES)}")
    return c


def detect_source_language(text: str) -> str:
    """The source's language, by the offline detector where installed; else ask for ``--from``."""
    try:
        from sovra.language import detect_language  # type: ignore[import-not-found,unused-ignore]

        found = detect_language(text)
    except (ImportError, SovraError):
        found = None
    if found not in LANGUAGES:
        raise InputError(
            "could not tell which language the document is in", hint=f"give it with --from ({', '.join(LANGUAGES)})"
        )
    return str(found)


# --------------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class Segment:
    id: str  # "p<page>.<n>"
    page: int
    text: str


def segments(pages: dict[int, str], max_chars: int = MAX_SEGMENT_CHARS) -> list[Segment]:
    """Paragraphs in reading order; one longer than ``max_chars`` is cut at sentence ends."""
    out: list[Segment] = []
    for page in sorted(pages):
        n = 0
        for para in re.split(r"\n\s*\n", pages[page]):
            para = para.strip()
            if not para:
                continue
            for piece in _cut(para, max_chars):
                n += 1
                out.append(Segment(f"p{page}.{n}", page, piece))
    return out


def _cut(text: str, max_chars: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    pieces, current = [], ""
    for sentence in _SENTENCE_END.split(text):
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    return [*pieces, current] if current else pieces


# --------------------------------------------------------------------------------- prompt


def prompt(text: str, source: str, target: str, terms: list[GlossaryTerm]) -> list[dict[str, str]]:
    rules = [
        f"You are a professional financial and legal translator. Translate the user's text from "
        f"{LANGUAGES[source]} into {LANGUAGES[target]}.",
        "Reply with the translation only: no notes, no quotes around it, no explanation.",
        "Keep every number, amount, currency, date, percentage and rate exactly; you may write them in "
        f"the {LANGUAGES[target]} format (separators, month names) but never change a value.",
        "Keep party and company names as written. Translate each defined term the same way every time "
        "and keep its quotation marks and parentheses.",
        "Keep Markdown formatting (headings, lists, tables, emphasis) as it is.",
    ]
    if terms:
        rules.append("Use these glossary terms, exactly:")
        rules += [f"- {t.source} => {t.target}" for t in terms]
    return [{"role": "system", "content": "\n".join(rules)}, {"role": "user", "content": text}]


def _sha(value: Any) -> str:
    data = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


# --------------------------------------------------------------------------------- state


class TranslationState:
    """Finished segments, one JSON line each, appended and fsynced as they finish. A line cut off by
    a crash is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and "key" in rec:
                    self.done[rec["key"]] = rec

    def add(self, rec: dict[str, Any]) -> None:
        self.done[rec["key"]] = rec
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


# --------------------------------------------------------------------------------- results


@dataclass
class SegmentResult:
    id: str
    page: int
    source: str
    translation: str
    model: str  # the model or LoRA adapter id that translated it
    route: str  # the route that served it
    prompt_sha256: str
    output_sha256: str
    check: SegmentCheck
    resumed: bool = False  # taken from the state file, not translated in this run


@dataclass
class TranslationReport:
    source_lang: str
    target_lang: str
    segments: list[SegmentResult] = field(default_factory=list)
    run_id: str = ""
    source_path: str = ""
    out_path: str = ""
    glossary: str = ""

    def count(self, status: str) -> int:
        return sum(1 for s in self.segments if s.check.status == status)

    @property
    def changed(self) -> bool:
        return any(s.check.status == "changed" for s in self.segments)

    @property
    def all_preserved(self) -> bool:
        """Every fact of every segment was checked on both sides and none changed."""
        return not any(s.check.status in ("changed", "could_not_check") for s in self.segments)

    @property
    def text(self) -> str:
        parts, page = [], None
        multi = len({s.page for s in self.segments}) > 1
        for s in self.segments:
            if multi and s.page != page:
                parts.append(f"<!-- page {s.page} -->")
                page = s.page
            parts.append(s.translation)
        return "\n\n".join(parts) + "\n"

    def summary(self) -> str:
        n = len(self.segments)
        checked = sum(s.check.checked for s in self.segments)
        head = (
            f"{n} segment(s): {self.count('preserved')} preserved, {self.count('changed')} changed, "
            f"{self.count('could_not_check')} could not check, {self.count('no_facts')} without facts; "
            f"{checked} facts, numbers and names checked"
        )
        if self.changed:
            return head + ". Some facts CHANGED in translation: see the report."
        if not self.all_preserved:
            return head + ". Not every fact could be checked: see the report."
        if not checked:
            return head + ". Nothing to check: no amount, date, number or name in the text."
        return head + ". All facts preserved."

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source": self.source_path,
            "output": self.out_path,
            "from": self.source_lang,
            "to": self.target_lang,
            "glossary": self.glossary,
            "all_preserved": self.all_preserved,
            "changed": self.changed,
            "counts": {k: self.count(k) for k in ("preserved", "changed", "could_not_check", "no_facts")},
            "segments": [
                {
                    "id": s.id,
                    "page": s.page,
                    "model": s.model,
                    "route": s.route,
                    "resumed": s.resumed,
                    "source": s.source,
                    "translation": s.translation,
                    **s.check.to_json(),
                }
                for s in self.segments
            ],
        }


# --------------------------------------------------------------------------------- translating

Progress = Callable[[int, int], None]  # (segments done, total)


def translate_pages(
    pages: dict[int, str],
    settings: Settings,
    *,
    to: str,
    source: str | None = None,
    glossary: Glossary | None = None,
    state_path: Path | None = None,
    user_id: str = "sdk",
    interface: str = "sdk",
    title: str = "passage",
    gateway: Any = None,
    progress: Progress | None = None,
    workers: int = WORKERS,
) -> TranslationReport:
    """Translate ``pages`` (page number -> text) into ``to``, one audited run; see the module doc."""
    from sovra.audit import open_audit
    from sovra.gateway import ModelGateway
    from sovra.recorder import RunRecorder

    target = _lang(to, "target")
    src = _lang(source, "source") if source else detect_source_language("\n".join(pages.values()))
    if src == target:
        raise InputError(f"the text is already in {LANGUAGES[target]}", hint="choose another --to language")
    own = gateway is None
    gw = gateway if gateway is not None else ModelGateway(settings)
    try:
        translation_route(gw.routes, src, target)  # refuse before a run is opened
        segs = segments(pages)
        if not segs:
            raise InputError(f"{title} has no text to translate")
        question = f"translate {title} {src}->{target}"
        with RunRecorder(open_audit(settings), user_id=user_id, interface=interface, question=question) as rec:
            report = translate_segments(
                segs, gw, rec, source=src, target=target, glossary=glossary,
                state=TranslationState(state_path) if state_path else None, progress=progress, workers=workers,
            )  # fmt: skip
            rec.finish(answer={"status": "translated", **report.to_json()["counts"], "changed": report.changed,
                               "all_preserved": report.all_preserved})  # fmt: skip
        return report
    finally:
        if own:
            gw.close()


def translate_segments(
    segs: list[Segment],
    gw: Any,
    rec: Any,
    *,
    source: str,
    target: str,
    glossary: Glossary | None = None,
    state: TranslationState | None = None,
    progress: Progress | None = None,
    workers: int = WORKERS,
) -> TranslationReport:
    """Translate and check ``segs`` on gateway ``gw``, recording into the open run ``rec`` (a
    RunRecorder: this function's own run, or the agent run a tool call belongs to). Up to ``workers``
    segments are in flight at once; audit records and the state file are written from this thread."""
    if source == target:
        raise InputError(f"the text is already in {LANGUAGES[target]}", hint="choose another target language")
    route_name = translation_route(gw.routes, source, target)
    route = gw.routes.routes[route_name]
    terms = glossary.for_pair(source, target) if glossary else []
    report = TranslationReport(source, target, glossary=glossary.name if glossary else "", run_id=rec.run_id)
    jobs = []
    for seg in segs:
        key = _sha([source, target, glossary.digest if glossary else "", route_name, route.model, seg.text])
        seg_terms = relevant_terms(seg.text, terms)
        jobs.append((seg, key, seg_terms, prompt(seg.text, source, target, seg_terms)))
    done: dict[str, dict[str, Any]] = dict(state.done) if state else {}
    todo = {key: (seg, messages) for seg, key, _, messages in jobs if key not in done}  # a repeat is sent once
    if progress:
        progress(0, len(segs))  # the route and the input are good: the work starts
        progress(sum(1 for _, key, _, _ in jobs if key in done), len(segs))

    def send(messages: list[dict[str, str]], chars: int) -> Any:
        return gw.complete_text(messages, route=route_name, max_tokens=max(route.max_tokens, chars // 2 + 100))

    failure: BaseException | None = None
    queue = list(todo.items())
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sovra-translate") as pool:
        running: dict[Future[Any], str] = {}
        while queue or running:
            # Submitted only as slots free up, so a failure stops the rest from being sent.
            while queue and failure is None and len(running) < max(1, workers):
                key, (seg, messages) = queue.pop(0)
                running[pool.submit(send, messages, len(seg.text))] = key
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                key = running.pop(fut)
                seg, messages = todo[key]
                try:
                    text, call = fut.result()
                except BaseException as exc:  # keep what the calls still in flight return, then raise
                    failure = failure or exc
                    continue
                rec.model_call(
                    model=call.model, input_tokens=call.prompt_tokens, output_tokens=call.completion_tokens,
                    duration_ms=call.latency_ms, route=call.route, served_route=call.served_route,
                    base_url=call.base_url, params=call.params, attempts=call.attempts, segment=seg.id,
                    failures=list(call.failures), prompt=messages, output=call.output,
                )  # fmt: skip
                done[key] = {"key": key, "id": seg.id, "translation": text.strip(), "model": call.model,
                             "route": call.served_route, "complete": call.finish_reason != "length",
                             "run_id": rec.run_id}  # fmt: skip
                if state:
                    state.add(done[key])
                if progress:
                    progress(sum(1 for _, k, _, _ in jobs if k in done), len(segs))
    if failure is not None:
        raise failure
    learned = learn_defined_terms([(seg.text, done[key]["translation"]) for seg, key, _, _ in jobs])
    for seg, key, seg_terms, messages in jobs:
        got = done[key]
        check = check_segment(seg.text, got["translation"], seg_terms, complete=got["complete"], learned=learned)
        result = SegmentResult(
            seg.id, seg.page, seg.text, got["translation"], got["model"], got["route"],
            _sha(messages), _sha(got["translation"]), check, got.get("run_id") != rec.run_id,
        )  # fmt: skip
        report.segments.append(result)
        rec.record(
            "translate.segment",
            {
                "segment": seg.id, "page": seg.page, "model": result.model, "route": result.route,
                "prompt_sha256": result.prompt_sha256, "output_sha256": result.output_sha256,
                "resumed": result.resumed, "translated_in_run": got.get("run_id"), "check": check.to_json(),
            },
        )  # fmt: skip
    return report


def translate_text(
    text: str, settings: Settings, *, to: str, source: str | None = None, **kw: Any
) -> TranslationReport:
    """Translate a passage; ``report.text`` is the translation, ``report.segments`` the checks."""
    return translate_pages({1: text}, settings, to=to, source=source, **kw)


def default_out(path: Path, target: str) -> Path:
    return path.with_name(f"{path.stem}.{target}.md")


def state_file(out: Path) -> Path:
    return out.with_name(out.name + ".state.jsonl")


def report_file(out: Path) -> Path:
    return out.with_name(out.name + ".check.json")


def translate_document(
    path: Path,
    settings: Settings,
    *,
    to: str,
    source: str | None = None,
    glossary: Glossary | None = None,
    out: Path | None = None,
    fresh: bool = False,
    **kw: Any,
) -> TranslationReport:
    """Translate the file at ``path`` (any format ``parse_file`` reads) into Markdown at ``out``
    (default ``<name>.<to>.md`` beside it), with the checker's report beside that
    (``<out>.check.json``); resumable through ``<out>.state.jsonl`` unless ``fresh``."""
    from sovra.connectors.parsers import parse_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} is not a file", hint="give the path of a PDF, DOCX, Markdown or text file")
    target = _lang(to, "target")
    out = Path(out) if out else default_out(path, target)
    if out.resolve() == path.resolve():
        raise InputError(f"the output {out} would overwrite the source", hint="choose another --out")
    pages = parse_file(path)
    unread = [p for p in pages if p.skipped]
    if unread:
        raise InputError(
            f"{path.name}: {len(unread)} page(s) could not be read ({unread[0].skipped}); a translation "
            "would silently leave them out",
            hint="turn OCR on or install it (docs/retrieval.md), or give a file with a text layer",
        )
    state = state_file(out)
    if fresh and state.exists():
        state.unlink()
    try:
        report = translate_pages(
            {p.number: p.text for p in pages}, settings, to=target, source=source, glossary=glossary,
            state_path=state, title=path.name, **kw,
        )  # fmt: skip
    except SovraError as exc:
        saved = len(TranslationState(state).done)
        if saved:
            exc.hint = (exc.hint + "; " if exc.hint else "") + (
                f"{saved} translated segment(s) are kept in {state}: rerun the same command to continue"
            )
        raise
    report.source_path, report.out_path = str(path), str(out)
    _write(out, report.text)
    _write(report_file(out), json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    return report


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
