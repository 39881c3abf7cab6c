"""Files a person uploads to ask about: parsed and indexed like any document, readable by the
uploader alone until they share it.

An upload is a document of the source ``uploads`` (type ``upload``) whose ACL is
``{"user:<uploader>"}`` plus the users and groups the uploader shares it with, so search, ask, the
passage lookup and the document viewer apply it exactly as for every other document (inside the
index). The file goes through the ingestion parsers and the ingest pipeline (chunk, embed, one
atomic switch); it is searchable from the next question on, in every process on the data dir
(sovra.index.shared). Adding, sharing and removing are audit records (ids, sizes and ACLs; the file
name is free text and sealed). Removal deletes the chunks from the index and the stored file.

The uploads' owners and share lists live in ``<data_dir>/uploads/uploads.db`` (SQLite) beside the
stored files; ``sovra ingest --rebuild`` drops the index and with it the uploads' chunks.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from sovra.audit import SYSTEM_RUN
from sovra.config import Settings
from sovra.connectors.parsers import parse_file
from sovra.documents import Deletion, Document, Page
from sovra.errors import InputError
from sovra.identity import PUBLIC, Directory, User
from sovra.ingest import UPLOADS_SOURCE, Ingestor

SOURCE = UPLOADS_SOURCE  # reserved: `sovra ingest`/`sovra sync` refuse a source of this name
DOC_TYPE = "upload"
MAX_NAME_CHARS = 150
MAX_SHARES = 50


class UploadError(InputError):
    """An upload refused (type, size, unreadable) or an action on an upload that is not yours."""


@dataclass(frozen=True)
class Upload:
    doc_id: str
    owner: str
    name: str
    size: int
    sha256: str
    uploaded: float  # epoch seconds
    shared_with: tuple[str, ...]  # principals: "user:bob", "group:finance"

    @property
    def acl(self) -> frozenset[str]:
        return frozenset({f"user:{self.owner}", *self.shared_with})


def _safe_name(name: str) -> str:
    base = PurePath(name.replace("\\", "/")).name.strip()
    return re.sub(r"[^\w.() -]", "_", base)[-MAX_NAME_CHARS:]


def size_words(n: int) -> str:
    """A size as people read it (decimal units, as the parsers' messages)."""
    if n < 1000:
        return f"{n} bytes"
    value, unit = (n / 1e6, "MB") if n >= 1_000_000 else (n / 1e3, "kB")
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


class UploadStore:
    """Uploads on one data dir. ``index``, ``embedder`` and ``audit`` are the runtime's services."""

    def __init__(self, settings: Settings, index: Any, embedder: Any, audit: Any, directory: Directory) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.audit = audit
        self.directory = directory
        self.root = settings.paths.root / "uploads"
        self.root.mkdir(parents=True, exist_ok=True)
        with closing(self._db()) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS uploads (doc_id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL,"
                " size INTEGER NOT NULL, sha256 TEXT NOT NULL, uploaded REAL NOT NULL, shared_with TEXT NOT NULL)"
            )
            db.commit()

    # ------------------------------------------------------------------ reading

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.root / "uploads.db", timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    @staticmethod
    def _row(row: tuple[Any, ...]) -> Upload:
        return Upload(row[0], row[1], row[2], int(row[3]), row[4], float(row[5]), tuple(json.loads(row[6])))

    def mine(self, user: User) -> list[Upload]:
        """The user's own uploads, newest first."""
        with closing(self._db()) as db:
            rows = db.execute("SELECT * FROM uploads WHERE owner=? ORDER BY uploaded DESC", (user.id,)).fetchall()
        return [self._row(r) for r in rows]

    def _own(self, user: User, doc_id: str) -> Upload:
        """The upload ``doc_id`` if ``user`` made it; the same refusal whether it is missing or another's."""
        with closing(self._db()) as db:
            row = db.execute("SELECT * FROM uploads WHERE doc_id=? AND owner=?", (doc_id, user.id)).fetchone()
        if row is None:
            raise UploadError(f"you have no upload {doc_id!r}", hint="only its uploader may change a file")
        return self._row(row)

    # ------------------------------------------------------------------ changing

    def check(self, name: str, size: int) -> None:
        """Refuse a file by its type and size before anything is stored or read."""
        suffix = PurePath(name).suffix.lower()
        allowed = sorted({t.lower() if t.startswith(".") else f".{t.lower()}" for t in self.settings.upload_types})
        if suffix not in allowed:
            raise UploadError(
                f"{_safe_name(name) or 'the file'}: {suffix or 'a file without an extension'} files cannot be "
                f"uploaded; allowed: {', '.join(allowed)}"
            )
        limit = self.settings.upload_max_bytes
        if size > limit:
            raise UploadError(
                f"{_safe_name(name)}: the file is {size_words(size)}; uploads are limited to {size_words(limit)}"
            )
        if size == 0:
            raise UploadError(f"{_safe_name(name)}: the file is empty")

    def add(self, user: User, name: str, data: bytes) -> Upload:
        """Store, parse and index a file for ``user`` alone. Raises UploadError with one line to show."""
        self.check(name, len(data))
        safe = _safe_name(name)
        if not safe or safe.startswith("."):
            raise UploadError("the file has no usable name", hint="rename it, e.g. notes.pdf")
        doc_id = f"upload-{uuid.uuid4().hex}"
        folder = self.root / doc_id
        folder.mkdir()
        path = folder / safe
        path.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        up = Upload(doc_id, user.id, safe, len(data), sha, time.time(), ())
        try:
            self._index([self._document(up, path)])
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with closing(self._db()) as db:
            db.execute(
                "INSERT INTO uploads VALUES (?,?,?,?,?,?,?)",
                (up.doc_id, up.owner, up.name, up.size, up.sha256, up.uploaded, "[]"),
            )
            db.commit()
        self._audit("upload.added", user, up, bytes=up.size, sha256=sha, type=path.suffix.lower())
        return up

    def share(self, user: User, doc_id: str, with_: Iterable[str]) -> Upload:
        """Let exactly these users and groups read the upload too (``[]``: the uploader alone again).
        Names: a user id (``bob`` or ``user:bob``) or a group (``group:finance``), as the directory has them."""
        up = self._own(user, doc_id)
        principals = tuple(sorted({self._principal(w) for w in with_ if w.strip()} - {f"user:{user.id}"}))
        if len(principals) > MAX_SHARES:
            raise UploadError(f"an upload can be shared with at most {MAX_SHARES} users and groups")
        shared = Upload(up.doc_id, up.owner, up.name, up.size, up.sha256, up.uploaded, principals)
        self._index([self._document(shared, self._path(up))])  # same version: only the ACL changes
        with closing(self._db()) as db:
            db.execute("UPDATE uploads SET shared_with=? WHERE doc_id=?", (json.dumps(list(principals)), doc_id))
            db.commit()
        self._audit("upload.shared", user, shared, was=sorted(up.acl))
        return shared

    def remove(self, user: User, doc_id: str) -> None:
        """Delete the upload's chunks from the index, then its file and row."""
        up = self._own(user, doc_id)
        self._index([Deletion(doc_id)])
        shutil.rmtree(self.root / doc_id, ignore_errors=True)
        with closing(self._db()) as db:
            db.execute("DELETE FROM uploads WHERE doc_id=?", (doc_id,))
            db.commit()
        self._audit("upload.removed", user, up)

    # ------------------------------------------------------------------ helpers

    def _principal(self, name: str) -> str:
        name = name.strip()
        users = {u.id: u for u in self.directory}
        if name.startswith("group:"):
            group = name.removeprefix("group:")
            if name == PUBLIC or not any(group in u.groups for u in users.values()):
                raise UploadError(f"no group {group!r} in the directory", hint="share with a group people are in")
            return name
        uid = name.removeprefix("user:")
        if uid not in users:
            raise UploadError(f"no user {uid!r} in the directory", hint="use the user's id, e.g. bob")
        return f"user:{uid}"

    def _path(self, up: Upload) -> Path:
        return self.root / up.doc_id / up.name

    def _document(self, up: Upload, path: Path) -> Document:
        limit = self.settings.upload_max_bytes

        def load() -> list[Page]:
            return parse_file(path, max_bytes=limit)

        return Document(
            id=up.doc_id,
            title=up.name,
            source=SOURCE,
            url=path.resolve().as_uri(),
            version=up.sha256,
            acl=up.acl,
            load=load,
            metadata={"path": up.name, "uploaded_by": up.owner},
            doc_type=DOC_TYPE,
        )

    def _index(self, changes: list[Document | Deletion]) -> None:
        s = self.settings
        report = Ingestor(self.index, self.embedder, s.paths.state_db, s.chunk_chars, s.chunk_overlap).apply(changes)
        if report.failed:
            _, why = report.failed[0]
            raise UploadError(why)

    def _audit(self, kind: str, user: User, up: Upload, **extra: Any) -> None:
        data = {
            "doc_id": up.doc_id,
            "owner": up.owner,
            "acl": sorted(up.acl),
            "text": up.name,  # a file name is free text: sealed, erasable
            **extra,
        }
        self.audit.append(kind, data, run_id=SYSTEM_RUN, user_id=user.id)
