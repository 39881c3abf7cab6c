"""The tamper-evident audit log: an append-only, hash-chained table in SQLite or PostgreSQL.

Every record stores ``hash = sha256(canonical JSON of {seq, run_id, ts, kind, user_id, trace_id,
span_id, data, prev_hash})`` and ``prev_hash`` = the hash of the record before it (64 zeros for the
first). Changing, removing or reordering any record therefore breaks the chain at that record,
and :meth:`AuditLog.verify` names it.

Personal data is *sealed* (see :mod:`sovra.privacy`): private fields are stored in a separate
content table and the chained record holds only a salted hash of each, so erasing a data subject's
content (:meth:`AuditLog.erase`, :meth:`AuditLog.purge`) leaves the chain verifiable.

What ``verify`` detects and locates:

- a record edited, deleted or moved (its hash, or the link from the next record, breaks);
- records cut off the end (the one-row ``chain_head``, updated in the same transaction as every
  append, says how many there were);
- a sealed content row deleted outside :meth:`AuditLog.erase` / :meth:`AuditLog.purge` (every
  erasure record lists the refs it removed, and a missing ref no erasure accounts for is flagged);
- with Ed25519 signing on: a rewritten chain (every record is signed) and a cut tail with a
  rewritten head (the head is signed too, row 0 of ``audit_signatures``).

What it cannot detect from inside the database: a whole-database copy restored from earlier (every
record, head and signature in it were genuine once), or, without signing, a cut tail whose head was
rewritten to match. An anchor kept outside closes both: copy :meth:`AuditLog.head` somewhere the
attacker cannot write (WORM storage, a signed timestamp, another system's log) from time to time
and pass it to ``verify(anchor=...)`` (``sovra audit verify --anchor``).

Durability: :meth:`AuditLog.append` returns only after its transaction is committed and fsynced
(SQLite WAL + ``synchronous=FULL``; PostgreSQL ``synchronous_commit=on``), so callers append
*before* they make a step's effect visible. A record, its content and the head move in one
transaction, so a crash (even ``kill -9``) leaves either all of them or none.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from sovra.audit_sign import Signer, signature_ok
from sovra.audit_store import BUSY_TIMEOUT_S, GENESIS_HASH, Exec, PostgresStore, SqliteStore, open_store
from sovra.errors import AuditIntegrityError, SovraError
from sovra.privacy import DEFAULT_PRIVATE_FIELDS, Redactor, content_ref, refs_in, seal, unseal

log = logging.getLogger(__name__)

__all__ = [
    "BUSY_TIMEOUT_S", "GENESIS_HASH", "AuditLog", "AuditRecord", "ChainHead", "ErasureReport", "VerifyResult",
]  # fmt: skip

# Kinds that frame a run rather than being one of its steps.
RUN_START, RUN_END, RUN_ERROR = "run.start", "run.end", "run.error"
ERASURE, RETENTION = "audit.erasure", "audit.retention"
# Records the log writes about itself, not part of any user's run.
SYSTEM_RUN = "audit"

_COLUMNS = "seq, run_id, ts, kind, user_id, trace_id, span_id, data, prev_hash, hash"


# ---------------------------------------------------------------------------------------------
# Canonical JSON


def _jsonable(obj: Any) -> Any:
    """``json.dumps(default=...)`` hook: turn common non-JSON values into JSON ones.

    Audit must never be the reason a step fails, so anything unknown falls back to ``repr``.
    """
    if hasattr(obj, "model_dump") and callable(obj.model_dump):  # pydantic v2 models
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, uuid.UUID):
        return obj.hex
    if isinstance(obj, Decimal):
        return str(obj)  # keep amounts exact; a float would round them
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, BaseException):
        return {"type": type(obj).__name__, "message": str(obj)}
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, Iterator | tuple | list):
        return list(obj)
    return repr(obj)


_NATIVE = (str, int, float, bool, type(None))


def _normalize(obj: Any) -> Any:
    """Deep-convert to plain JSON types with string keys, in one pass.

    One pass matters: a second attempt after ``json.dumps`` failed would see generators already
    consumed. json also refuses tuple keys and cannot sort mixed-type keys, hence ``str(k)``.
    """
    if isinstance(obj, _NATIVE):
        return obj
    if isinstance(obj, dict):
        return {k if isinstance(k, str) else str(k): _normalize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_normalize(v) for v in obj]
    return _normalize(_jsonable(obj))


def canonical_json(value: Any) -> str:
    """The one serialisation the chain hashes: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


def record_hash(
    *,
    seq: int,
    run_id: str,
    ts: str,
    kind: str,
    user_id: str | None,
    trace_id: str | None,
    span_id: str | None,
    data: Any,
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "run_id": run_id,
        "ts": ts,
        "kind": kind,
        "user_id": user_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "data": data,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def head_digest(count: int, last_hash: str) -> str:
    """What the signing key signs for the chain head: its record count and last hash."""
    return hashlib.sha256(f"sovra-audit-head:{count}:{last_hash}".encode()).hexdigest()


def new_run_id() -> str:
    """A UUIDv7 (time-ordered: 48-bit Unix milliseconds + 74 random bits) as 32 hex chars.

    Time order makes run ids sort like the runs happened, which helps when reading logs.
    """
    ms = int(datetime.now(UTC).timestamp() * 1000) & ((1 << 48) - 1)
    rand_a = int.from_bytes(os.urandom(2), "big") & 0xFFF
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value).hex


# ---------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    run_id: str
    ts: str  # UTC ISO-8601 with microseconds, exactly as hashed
    kind: str
    user_id: str | None
    trace_id: str | None
    span_id: str | None
    data: Any  # as readers see it: sealed values filled in, or "[erased]"
    prev_hash: str
    hash: str
    sealed: Any = None  # the data exactly as hashed (private values replaced by content refs)

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.ts)


@dataclass(frozen=True)
class ChainHead:
    """Number of records and hash of the last one: what an external anchor should keep."""

    count: int
    last_hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = "chain verifies"

    def raise_for_error(self) -> None:
        if not self.ok:
            raise AuditIntegrityError(
                f"audit log does not verify: {self.reason}",
                hint="keep the file for investigation; restore from backup to continue",
            )


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    user_id: str | None
    started: datetime
    question: str | None
    steps: int
    status: str  # "ok", "error" or "running" (no run.end / run.error yet)


@dataclass(frozen=True)
class ErasureReport:
    erased: int  # content values deleted
    runs: tuple[str, ...]  # runs that lost content
    record: AuditRecord  # the audit.erasure / audit.retention record that documents it


# ---------------------------------------------------------------------------------------------
# The store


class AuditLog:
    """Append-only audit store. Safe to share between threads; every process (and every thread,
    if it likes) may open its own instance on the same file or database.

    ``target``: a path (SQLite) or a ``postgresql://`` URL. ``private_fields``: keys whose values
    are sealed into the content table (``()`` stores everything in the chain). ``redactor``:
    scrubs personal data from sealed values before they are stored. ``signing_key``: an Ed25519
    key (see :meth:`Signer.load`) to sign every record hash. ``schema``: PostgreSQL schema.
    """

    def __init__(
        self,
        target: Path | str,
        *,
        private_fields: Iterable[str] = DEFAULT_PRIVATE_FIELDS,
        redactor: Redactor | None = None,
        signing_key: Signer | str | Path | bytes | None = None,
        schema: str | None = None,
    ) -> None:
        self._store = open_store(target, schema=schema)
        self.path: Path | None = self._store.path if isinstance(self._store, SqliteStore) else None
        self.location = self._store.location
        self.private_fields = frozenset(private_fields)
        self.redactor = redactor
        self.signer = (
            signing_key if isinstance(signing_key, Signer) or signing_key is None else Signer.load(signing_key)
        )

    @property
    def is_postgres(self) -> bool:
        return isinstance(self._store, PostgresStore)

    def _connect(self) -> Any:
        """The underlying DB-API connection (for diagnostics and tests)."""
        return self._store.connect()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _failed(self, exc: BaseException, what: str) -> SovraError:
        return SovraError(
            f"could not {what} the audit log {self.location}: {exc}",
            hint="check free disk space, permissions and the database server; nothing was changed",
        )

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        data: Any = None,
        *,
        run_id: str,
        user_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> AuditRecord:
        """Append one record and return it once it is durably committed."""
        parsed = json.loads(canonical_json({} if data is None else data))  # hash what readers see
        try:
            with self._store.write() as ex:
                rec = self._write(ex, kind, parsed, run_id, user_id, trace_id, span_id)
        except self._store.errors as exc:
            raise self._failed(exc, "write to") from exc
        log.debug("audit %s seq=%d run=%s", kind, rec.seq, run_id)
        return rec

    def _write(
        self,
        ex: Exec,
        kind: str,
        parsed: Any,
        run_id: str,
        user_id: str | None,
        trace_id: str | None,
        span_id: str | None,
    ) -> AuditRecord:
        """Inside a write transaction: the head is locked first, then record, content, head."""
        sealed, contents = seal(parsed, self.private_fields, canonical_json, self.redactor)
        head = ex("SELECT count, last_hash FROM chain_head WHERE id = 1" + self._store.lock_head).fetchone()
        if head is None:
            raise AuditIntegrityError(
                f"the audit log {self.location} has records but no chain head",
                hint="someone edited the store; run `sovra audit verify` and investigate",
            )
        seq, prev_hash = int(head[0]) + 1, str(head[1])
        ts = datetime.now(UTC).isoformat(timespec="microseconds")
        digest = record_hash(
            seq=seq, run_id=run_id, ts=ts, kind=kind, user_id=user_id,
            trace_id=trace_id, span_id=span_id, data=sealed, prev_hash=prev_hash,
        )  # fmt: skip
        ex(
            f"INSERT INTO audit_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, run_id, ts, kind, user_id, trace_id, span_id, canonical_json(sealed), prev_hash, digest),
        )
        for c in contents:
            ex(
                "INSERT INTO audit_content (ref, seq, run_id, subject, ts, salt, value) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (c.ref, seq, run_id, user_id, ts, c.salt, c.value),
            )
        if self.signer is not None:
            ex("INSERT INTO audit_signatures (seq, signature) VALUES (?, ?)", (seq, self.signer.sign(digest)))
            # The head is signed too (row 0): cutting the tail and rewriting the head then needs the key.
            ex("DELETE FROM audit_signatures WHERE seq = 0")
            ex(
                "INSERT INTO audit_signatures (seq, signature) VALUES (0, ?)",
                (self.signer.sign(head_digest(seq, digest)),),
            )
        ex("UPDATE chain_head SET count = ?, last_hash = ? WHERE id = 1", (seq, digest))
        data = unseal(sealed, {c.ref: json.loads(c.value) for c in contents})
        return AuditRecord(seq, run_id, ts, kind, user_id, trace_id, span_id, data, prev_hash, digest, sealed)

    # -- reading ---------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._store.snapshot() as ex:
                return list(ex(sql, params).fetchall())
        except self._store.errors as exc:
            raise self._failed(exc, "read") from exc

    def _contents(self, refs: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i in range(0, len(refs), 500):
            part = refs[i : i + 500]
            marks = ", ".join("?" * len(part))
            for ref, value in self._query(f"SELECT ref, value FROM audit_content WHERE ref IN ({marks})", tuple(part)):
                out[ref] = json.loads(value)
        return out

    def _records(self, rows: list[tuple[Any, ...]]) -> list[AuditRecord]:
        sealed = [json.loads(r[7]) for r in rows]
        contents = self._contents([ref for s in sealed for ref in refs_in(s)])
        return [
            AuditRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], unseal(s, contents), r[8], r[9], s)
            for r, s in zip(rows, sealed, strict=True)
        ]

    def records(self, run_id: str) -> list[AuditRecord]:
        """All records of one run, in the order they were written, private values filled in."""
        rows = self._query(f"SELECT {_COLUMNS} FROM audit_records WHERE run_id = ? ORDER BY seq", (run_id,))
        return self._records(rows)

    def run_owner(self, run_id: str) -> str | None:
        """The user who started a run (for access checks), or None if there is no such run."""
        rows = self._query(f"SELECT user_id FROM audit_records WHERE run_id = ? AND kind = '{RUN_START}'", (run_id,))
        return rows[0][0] if rows else None

    def runs(self, user_id: str | None = None, limit: int = 20) -> list[RunSummary]:
        """The most recent runs first, optionally only one user's."""
        where, params = ("AND s.user_id = ?", (user_id,)) if user_id is not None else ("", ())
        rows = self._query(
            f"""
            SELECT s.run_id, s.user_id, s.ts, s.data,
                (SELECT COUNT(*) FROM audit_records r WHERE r.run_id = s.run_id
                    AND r.kind NOT IN ('{RUN_START}', '{RUN_END}', '{RUN_ERROR}')),
                (SELECT r.kind FROM audit_records r WHERE r.run_id = s.run_id
                    AND r.kind IN ('{RUN_END}', '{RUN_ERROR}') ORDER BY r.seq DESC LIMIT 1)
            FROM audit_records s WHERE s.kind = '{RUN_START}' {where}
            ORDER BY s.seq DESC LIMIT ?""",
            (*params, limit),
        )
        sealed = [json.loads(r[3]) if r[3] else {} for r in rows]
        contents = self._contents([ref for s in sealed for ref in refs_in(s)])
        status = {RUN_END: "ok", RUN_ERROR: "error", None: "running"}
        out = []
        for (run_id, uid, ts, _, steps, end_kind), s in zip(rows, sealed, strict=True):
            question = unseal(s, contents).get("question")
            out.append(RunSummary(run_id, uid, datetime.fromisoformat(ts), question, int(steps), status[end_kind]))
        return out

    def last_run_id(self) -> str | None:
        rows = self._query(f"SELECT run_id FROM audit_records WHERE kind = '{RUN_START}' ORDER BY seq DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    def since(self, after_seq: int, limit: int = 5000) -> list[AuditRecord]:
        """Up to ``limit`` records with ``seq > after_seq``, in chain order, private values filled in:
        how a reader keeps a derived view (the compliance console's run catalogue) up to date."""
        sql = f"SELECT {_COLUMNS} FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?"
        rows = self._query(sql, (after_seq, limit))
        return self._records(rows)

    def head(self) -> ChainHead:
        """The current head; store it outside this store to make later truncation detectable."""
        rows = self._query("SELECT count, last_hash FROM chain_head WHERE id = 1")
        if not rows:
            raise AuditIntegrityError(f"the audit log {self.location} has no chain head")
        return ChainHead(int(rows[0][0]), str(rows[0][1]))

    # -- erasure and retention -------------------------------------------------------------

    def erase(
        self,
        *,
        subject: str | None = None,
        run_id: str | None = None,
        containing: str | None = None,
        requested_by: str | None = None,
        reason: str = "",
    ) -> ErasureReport:
        """Delete sealed personal content (GDPR art. 17) while keeping the chain verifiable.

        Selects content of runs by ``subject`` (the asking user), one ``run_id``, and/or every
        value ``containing`` a text (case-insensitive; e.g. a customer's name or IBAN). The
        erasure itself is recorded (who, why, how many; never the search text), then the store is
        compacted so the bytes are gone from its files.
        """
        if subject is None and run_id is None and not containing:
            raise SovraError("say whose data to erase", hint="give a subject, a run id or a text to match")
        clauses, params = [], []
        if subject is not None:
            clauses.append("subject = ?")
            params.append(subject)
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        needle = containing.casefold() if containing else None
        data = {"subject": subject, "run_id": run_id, "by_text": bool(containing), "reason": reason}
        return self._delete_content(
            " AND ".join(clauses) or "1 = 1", tuple(params), needle, ERASURE, data, requested_by
        )

    def purge(self, before: datetime, *, requested_by: str | None = None) -> ErasureReport:
        """Retention: delete sealed content written before ``before``; the chain stays whole."""
        cutoff = before.astimezone(UTC).isoformat(timespec="microseconds")
        return self._delete_content("ts < ?", (cutoff,), None, RETENTION, {"before": cutoff}, requested_by)

    def _delete_content(
        self,
        where: str,
        params: tuple[Any, ...],
        needle: str | None,
        kind: str,
        data: dict[str, Any],
        requested_by: str | None,
    ) -> ErasureReport:
        try:
            with self._store.write() as ex:
                rows = ex(f"SELECT ref, run_id, value FROM audit_content WHERE {where}", params).fetchall()
                hit = [(ref, run) for ref, run, value in rows if needle is None or needle in str(value).casefold()]
                refs = [ref for ref, _ in hit]
                for i in range(0, len(refs), 500):
                    part = refs[i : i + 500]
                    ex(f"DELETE FROM audit_content WHERE ref IN ({', '.join('?' * len(part))})", tuple(part))
                runs = tuple(sorted({run for _, run in hit}))
                # The refs are salted hashes, not personal data: verify uses them to tell an erasure
                # from a content row deleted behind the log's back.
                payload = {**data, "erased": len(refs), "runs": list(runs), "refs": sorted(refs)}
                rec = self._write(ex, kind, payload, SYSTEM_RUN, requested_by, None, None)
            self._store.compact()
        except self._store.errors as exc:
            raise self._failed(exc, "erase from") from exc
        log.info("%s: %d content values removed from %d runs", kind, len(refs), len(runs))
        return ErasureReport(len(refs), runs, rec)

    # -- verification ----------------------------------------------------------------------

    def verify(self, anchor: ChainHead | None = None, public_key: str | None = None) -> VerifyResult:
        """Walk the whole chain and report the first record that does not check out.

        ``anchor`` is a :class:`ChainHead` taken earlier and kept elsewhere; when given, the
        record at ``anchor.count`` must still carry ``anchor.last_hash``. ``public_key`` (hex
        Ed25519; default: this log's own signing key) makes every record need a valid signature.
        Sealed content that is still present must match its ref; erased content is fine.
        """
        if public_key is None and self.signer is not None:
            public_key = self.signer.public_key_hex
        try:
            with self._store.snapshot() as ex:  # one snapshot for records, head and content
                head_row = ex("SELECT count, last_hash FROM chain_head WHERE id = 1").fetchone()
                sig_ok: Callable[[int, str], bool] | None = None
                if public_key is not None:
                    sigs = dict(ex("SELECT seq, signature FROM audit_signatures").fetchall())
                    key = public_key

                    def sig_ok(seq: int, digest: str) -> bool:
                        return signature_ok(key, digest, sigs.get(seq))

                seen = _Refs()
                rows = ex(f"SELECT {_COLUMNS} FROM audit_records ORDER BY seq")
                result = _walk(seen.watch(rows), head_row, anchor, sig_ok)
                if not result.ok:
                    return result
                if sig_ok is not None and head_row is not None and int(head_row[0]) > 0:
                    count, last = int(head_row[0]), str(head_row[1])
                    if not sig_ok(0, head_digest(count, last)):
                        return VerifyResult(
                            False, result.checked, count,
                            f"the chain head (record {count}) is not signed by the audit key: the tail may have "
                            "been cut and the head rewritten",
                        )  # fmt: skip
                present: set[str] = set()
                for ref, seq, salt, value in ex("SELECT ref, seq, salt, value FROM audit_content ORDER BY seq"):
                    if content_ref(str(salt), str(value)) != ref:
                        return VerifyResult(False, result.checked, int(seq), f"content of record {seq} was altered")
                    present.add(str(ref))
                gone = seen.unaccounted(present)
                if gone is not None:
                    return VerifyResult(
                        False, result.checked, gone,
                        f"content of record {gone} was deleted, and no erasure or retention record accounts for it",
                    )  # fmt: skip
                return result
        except self._store.errors as exc:
            raise self._failed(exc, "read") from exc


class _Refs:
    """The content refs the records point at, and the erasures that account for missing ones."""

    def __init__(self) -> None:
        self.refs: dict[str, tuple[int, str, str]] = {}  # ref -> (seq, run_id, ts)
        self.erased: set[str] = set()
        self.legacy_runs: set[str] = set()  # erasures written before they listed their refs
        self.retained_before: list[str] = []

    def watch(self, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            seq, run_id, ts, kind, data_text = row[0], row[1], row[2], row[3], row[7]
            try:
                data = json.loads(data_text)
            except (TypeError, ValueError):
                data = None  # _walk reports it
            for ref in refs_in(data):
                self.refs[ref] = (int(seq), str(run_id), str(ts))
            if kind in (ERASURE, RETENTION) and isinstance(data, dict):
                if isinstance(data.get("refs"), list):
                    self.erased.update(str(r) for r in data["refs"])
                elif kind == ERASURE:
                    self.legacy_runs.update(str(r) for r in data.get("runs") or [])
                else:
                    self.retained_before.append(str(data.get("before") or ""))
            yield row

    def unaccounted(self, present: set[str]) -> int | None:
        """The first record whose content is gone with no erasure record for it, or None."""
        for ref, (seq, run_id, ts) in sorted(self.refs.items(), key=lambda x: x[1][0]):
            if ref in present or ref in self.erased or run_id in self.legacy_runs:
                continue
            if any(ts < before for before in self.retained_before):
                continue
            return seq
        return None


def _walk(
    rows: Iterable[tuple[Any, ...]],
    head_row: tuple[Any, ...] | None,
    anchor: ChainHead | None,
    sig_ok: Callable[[int, str], bool] | None = None,
) -> VerifyResult:
    expected, prev_hash, checked = 1, GENESIS_HASH, 0
    anchor_seen = anchor is None or anchor.count == 0

    def bad(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(ok=False, checked=checked, first_bad_seq=seq, reason=reason)

    for seq, run_id, ts, kind, user_id, trace_id, span_id, data_text, stored_prev, stored_hash in rows:
        if not isinstance(seq, int) or seq < expected:
            return bad(expected, f"record {seq!r} is out of place (expected seq {expected})")
        if seq > expected:
            return bad(expected, f"record {expected} is missing (seq gap {expected - 1} -> {seq})")
        try:
            data = json.loads(data_text)
            canonical = canonical_json(data) == data_text
        except (TypeError, ValueError):
            canonical = False
        if not canonical:
            return bad(seq, f"record {seq} was altered (data is not the canonical JSON that was hashed)")
        digest = record_hash(
            seq=seq, run_id=run_id, ts=ts, kind=kind, user_id=user_id,
            trace_id=trace_id, span_id=span_id, data=data, prev_hash=stored_prev,
        )  # fmt: skip
        if digest != stored_hash:
            return bad(seq, f"record {seq} was altered")
        if stored_prev != prev_hash:
            return bad(seq, f"chain broken at {seq}: prev_hash does not match record {seq - 1}")
        if sig_ok is not None and not sig_ok(seq, stored_hash):
            return bad(seq, f"record {seq} has no valid signature from the audit signing key")
        if anchor is not None and seq == anchor.count:
            if stored_hash != anchor.last_hash:
                return bad(seq, f"record {seq} does not match the external anchor")
            anchor_seen = True
        checked += 1
        expected, prev_hash = seq + 1, stored_hash

    last = expected - 1
    if head_row is None:
        if checked:
            return bad(last, "the chain head is missing, so deleted tail records cannot be ruled out")
    else:
        count, head_hash = int(head_row[0]), str(head_row[1])
        if count > last:
            return bad(last + 1, f"record {last + 1} is missing: the chain head says {count} records, found {last}")
        if count < last or head_hash != prev_hash:
            return bad(last, f"the chain head does not match record {last} (head altered)")
    if not anchor_seen:
        assert anchor is not None
        return bad(last + 1, f"record {last + 1} is missing: the external anchor says {anchor.count} records")
    return VerifyResult(ok=True, checked=checked)


def open_audit(settings: Any) -> AuditLog:
    """The audit log a :class:`~sovra.config.Settings` describes.

    Reads ``audit_url`` (PostgreSQL URL; unset = ``<data_dir>/audit.sqlite``), ``audit_redact``
    (scrub PII from stored content), ``audit_signing_key`` (PEM path or hex seed) and
    ``audit_schema``; absent settings mean the defaults.
    """
    url = getattr(settings, "audit_url", None)
    redactor = None
    if getattr(settings, "audit_redact", False):
        try:
            from sovra.identity import Directory

            redactor = Redactor.for_users(Directory.from_file(settings.resolved_users_file))
        except SovraError:
            redactor = Redactor()  # no directory yet: the patterns still apply
    return AuditLog(
        url or settings.paths.audit_db,
        redactor=redactor,
        signing_key=getattr(settings, "audit_signing_key", None),
        schema=getattr(settings, "audit_schema", None),
    )
