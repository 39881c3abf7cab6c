"""What the Slack and Teams bots share: who is asking, "have I seen this event", one runtime per
process, and the plain pieces of an answer (text, notes, numbered sources, run id) that each bot
turns into its own cards.

Identity: a chat account never names a Sovra user by itself. ``chat-identities.json`` (setting
``SOVRA_CHAT_IDENTITIES_FILE``, default ``<data_dir>/chat-identities.json``) maps accounts to
users of the identity directory::

    {"slack": {"U0123ALICE": "alice"},
     "teams": {"<Entra object id or 29:... id>": "bob"},
     "email": {"carol@nordbank.example": "carol"}}

``email`` is used when the platform tells us the account's verified email (Slack ``users.info``);
a directory entry with an ``"email"`` field is matched too. An account that maps to nobody gets a
polite refusal, never a guessed identity.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sovra.config import Settings
from sovra.errors import ConfigError, InputError, SovraError
from sovra.identity import User
from sovra.readers import SourceAccess
from sovra.runtime import MAX_QUESTION_CHARS, Answer, Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")

# The runtime's own limit, checked before anything is loaded so the user hears it at once.
MAX_CHAT_CHARS = MAX_QUESTION_CHARS
DEDUP_KEEP_SECONDS = 7 * 24 * 3600  # Slack retries for minutes, Teams for seconds: a week is plenty

STATUS_NOTES = {
    "extracted": "Quoted from the sources (set SOVRA_LLM_BASE_URL to a served model for written answers).",
    "not_found": "Not found in the documents you can access.",
    "uncited": "The model cited no source: treat this answer with care.",
    "awaiting_approval": "Waiting for a human decision before it continues.",
    "rejected": "The requested action was rejected.",
    "cancelled": "The run was cancelled.",
}


PRIVATE_NOTE = (
    "I sent {who} the answer privately: it quotes documents that not everyone in this conversation "
    "may read. Ask me in a direct message to get such answers there."
)
WITHHELD_NOTE = (
    "The answer quotes documents that not everyone in this conversation may read, and I could not "
    "reach {who} privately. Ask me in a direct message to see it (run {run_id})."
)


def unknown_user_text(platform: str, account: str) -> str:
    return (
        f"Sorry, I don't know who you are in Sovra yet, so I can't search documents for you. "
        f"Please ask your Sovra administrator to map your {platform} account ({account}) to your user."
    )


def too_long_text(chars: int) -> str:
    return (
        f"Sorry, your message is {chars:,} characters long; I can answer questions of up to "
        f"{MAX_CHAT_CHARS:,} characters. Please shorten it and ask again."
    )


def log_failure(what: str, exc: BaseException) -> None:
    """A user's problem (SovraError) in one line; anything else with its traceback."""
    if isinstance(exc, SovraError):
        log.warning("%s: %s", what, exc)
    else:
        log.error("%s", what, exc_info=exc)


def error_text(exc: BaseException) -> str:
    if isinstance(exc, SovraError):
        return f"Sorry, I could not answer: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    return "Sorry, something went wrong on my side. The error was logged; please try again later."


# ---------------------------------------------------------------------------------------------
# Identity


class ChatIdentities:
    """Maps chat accounts (per platform) and verified emails to users of the identity directory."""

    def __init__(self, accounts: dict[str, dict[str, str]], emails: dict[str, str]) -> None:
        self._accounts = accounts
        self._emails = {k.lower(): v for k, v in emails.items()}
        self._files: tuple[Path, Path | None] | None = None
        self._stamps: tuple[Any, Any] = (None, None)

    @classmethod
    def from_file(cls, path: Path, directory_file: Path | None = None) -> ChatIdentities:
        """The mappings in ``path`` (and emails of ``directory_file``), re-read whenever either file
        changes: an account unmapped counts from its next message, without a restart."""
        identities = cls._read(path, directory_file)
        identities._files = (path, directory_file)
        identities._stamps = (_stamp(path), _stamp(directory_file))
        return identities

    def _refresh(self) -> None:
        if self._files is None:
            return
        stamps = (_stamp(self._files[0]), _stamp(self._files[1]))
        if stamps == self._stamps:
            return
        try:
            fresh = self._read(*self._files)
            self._accounts, self._emails = fresh._accounts, fresh._emails
        except (ConfigError, OSError, ValueError) as exc:
            log.error("chat identities cannot be re-read (%s): every chat user is refused until fixed", exc)
            self._accounts, self._emails = {}, {}
        self._stamps = stamps

    @classmethod
    def _read(cls, path: Path, directory_file: Path | None) -> ChatIdentities:
        raw: dict[str, Any] = {}
        if path.is_file():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"chat identities file {path} is not valid JSON: {exc}") from exc
            if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
                raise ConfigError(f"chat identities file {path} must map platform names to {{account: user}} objects")
        else:
            log.warning("no chat identities file at %s: every chat user will be refused", path)
        emails = dict(raw.pop("email", {}))
        if directory_file is not None and directory_file.is_file():
            # Directory entries may carry their email; explicit mappings win.
            for uid, entry in json.loads(directory_file.read_text(encoding="utf-8")).items():
                if isinstance(entry, dict) and isinstance(entry.get("email"), str):
                    emails.setdefault(entry["email"], uid)
        return cls({p: {str(k): str(v) for k, v in m.items()} for p, m in raw.items()}, emails)

    def user_id(self, platform: str, account: str, email: str | None = None) -> str | None:
        self._refresh()
        uid = self._accounts.get(platform, {}).get(account)
        if uid is None and email:
            uid = self._emails.get(email.lower())
        return uid

    def knows_account(self, platform: str, account: str) -> bool:
        self._refresh()
        return account in self._accounts.get(platform, {})

    def account_of(self, platform: str, user_id: str) -> str | None:
        """The platform account mapped to a Sovra user (the first, when several are)."""
        self._refresh()
        return next((a for a, u in self._accounts.get(platform, {}).items() if u == user_id), None)


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino) if st is not None else None


# ---------------------------------------------------------------------------------------------
# Retried events


class EventDedup:
    """Remembers which platform events were taken, in SQLite, so a retried event (Slack resends
    with ``X-Slack-Retry-Num``; Teams reposts an activity) produces no second answer, also across
    a restart. ``first_time`` is atomic: of two concurrent deliveries exactly one wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS seen_events (platform TEXT NOT NULL, event_id TEXT NOT NULL, "
                "seen_at REAL NOT NULL, PRIMARY KEY (platform, event_id))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def first_time(self, platform: str, event_id: str) -> bool:
        now = time.time()
        conn = self._connect()
        try:
            cur = conn.execute(
                "INSERT OR IGNORE INTO seen_events (platform, event_id, seen_at) VALUES (?, ?, ?)",
                (platform, event_id, now),
            )
            if cur.rowcount and int(now) % 100 == 0:  # now and then, forget old events
                conn.execute("DELETE FROM seen_events WHERE seen_at < ?", (now - DEDUP_KEEP_SECONDS,))
            return bool(cur.rowcount)
        finally:
            conn.close()


# ---------------------------------------------------------------------------------------------
# The runtime, shared


@dataclass(frozen=True)
class Source:
    n: int
    title: str
    where: str  # "p. 3", "rows JE-1, JE-2", or ""
    url: str
    quote: str

    @property
    def is_link(self) -> bool:
        return self.url.startswith(("https://", "http://"))


@dataclass
class AnswerParts:
    """An answer reduced to what a chat card shows."""

    text: str
    status: str
    run_id: str
    notes: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    sources_are_evidence: bool = False  # passages retrieved but not cited by the model
    approval: Any = None  # sovra.runtime.Approval when status == "awaiting_approval"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def answer_parts(answer: Answer, max_sources: int = 10) -> AnswerParts:
    cited = list(answer.citations)
    shown = cited or list(answer.evidence)
    sources = []
    for c in shown[:max_sources]:
        where = f"p. {c.page}" if c.page is not None else ""
        if c.rows:
            where = "rows " + ", ".join(c.rows[:5]) + (" ..." if len(c.rows) > 5 else "")
        sources.append(Source(n=c.n, title=c.title, where=where, url=c.url, quote=_clip(c.quote, 280)))
    notes = [STATUS_NOTES[answer.status]] if answer.status in STATUS_NOTES else []
    return AnswerParts(
        text=answer.text or "(no answer)",
        status=answer.status,
        run_id=answer.run_id,
        notes=notes + list(answer.notes),
        sources=sources,
        sources_are_evidence=not cited and bool(answer.evidence),
        approval=getattr(answer, "approval", None),
    )


class ChatService:
    """One runtime per process, shared by every chat message, with the audit interface name of
    the bot. Calls run one at a time (the embedded index, SQLite audit log and bundled model are
    single-writer), so concurrent messages, also from the same user, queue here instead of failing.
    """

    def __init__(
        self,
        settings: Settings,
        interface: str,
        *,
        runtime: Runtime | None = None,
        agent: Any = None,
        agent_name: str | None = None,
    ) -> None:
        self.settings = settings
        self.interface = interface
        self._own_runtime = runtime is None
        self.runtime = runtime or Runtime(settings)
        self._agent = agent
        self._agent_name = agent_name or settings.chat_agent
        self._lock = threading.Lock()
        self.identities = ChatIdentities.from_file(settings.resolved_chat_identities_file, settings.resolved_users_file)
        self.dedup = EventDedup(settings.paths.root / "chat-events.sqlite")

    @property
    def agent(self) -> Any:
        if self._agent is None:
            from sovra.agents import get_agent

            self._agent = get_agent(self._agent_name, self.settings)
        return self._agent

    def user(self, platform: str, account: str, email: str | None = None) -> User | None:
        """The Sovra user for a chat account, or None (unmapped, or mapped to a user the directory
        no longer has)."""
        uid = self.identities.user_id(platform, account, email)
        if uid is None:
            return None
        try:
            return self.runtime.services.directory.get(uid)
        except InputError:
            log.warning("%s account %s maps to %r, who is not in the identity directory", platform, account, uid)
            return None

    def _locked(self, fn: Callable[[], T]) -> T:
        with self._lock:
            return fn()

    def ask(self, user: User, question: str) -> Answer:
        return self._locked(lambda: self.runtime.ask(self.agent, question, user.id, interface=self.interface))

    def resume(self, run_id: str, approver: User, approved: bool, reason: str = "") -> Answer:
        """Decide a paused run as ``approver`` (the runtime checks they may, and audits who, when, why)."""
        return self._locked(
            lambda: self.runtime.resume(run_id, approver.id, approved, reason, interface=self.interface)
        )

    def everyone_may_read(self, readers: list[User | None], answer: Answer) -> bool:
        """The sharing rule of every chat face (``sovra.readers``): True when each of ``readers``
        (``None``: a member Sovra does not know, a guest) may read every source ``answer`` shows.
        A failed check (no index, ...) is a no."""
        from sovra.tools.ledger_tool import ledger_lookup

        def check() -> bool:
            access = SourceAccess(self.runtime.services.index, ledger_lookup.requires)
            return access.everyone_may_read(readers, answer)

        if not (answer.citations or answer.evidence):
            return True
        try:
            return self._locked(check)
        except Exception as exc:
            log_failure("checking who may read an answer failed (kept private)", exc)
            return False

    def close(self) -> None:
        if self._own_runtime:
            audit = self.runtime.services.__dict__.pop("audit", None)  # Services.close leaves it open
            self.runtime.close()
            if audit is not None:
                audit.close()
