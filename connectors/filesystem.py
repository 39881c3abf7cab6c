"""A folder of files, each optionally described by a ``<file>.meta.json`` sidecar.

The sidecar carries the title, the access list and business metadata (counterparty, contract
id, dates). A file without an access list is readable by nobody unless the connector was given
a ``default_acl``: making a document public must be a decision, not an accident.

Containment: the connector reads only what lies inside its folder. A file or sidecar whose real
path leaves the folder (a symlink to the API tokens file, a ``..`` trick) is listed with an empty
access list and a load that fails with the reason, so ingest reports it and never reads it; an
earlier indexed version becomes readable by nobody. Sidecars narrow, never widen: with
``allowed_acl`` set, principals a sidecar names outside it are dropped (logged) and a sidecar
cannot override the ``path`` metadata the connector sets. File names that are not valid UTF-8 keep
their bytes as the identity, written with backslash escapes (``Vertrag_M\\xfcller.txt``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sovra.connectors.base import SIDECAR_SUFFIX, failing_loader, parse_sidecar, sidecar_acl
from sovra.connectors.parsers import DEFAULT_MAX_BYTES, is_supported, parse_file
from sovra.documents import Document
from sovra.errors import ConfigError, ParseError

log = logging.getLogger(__name__)

_RESERVED_KEYS = {"title", "acl"}


class FilesystemConnector:
    def __init__(
        self,
        root: Path | str,
        name: str = "contracts",
        default_acl: Iterable[str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allowed_acl: Iterable[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.default_acl = frozenset(default_acl) if default_acl is not None else None
        self.max_bytes = max_bytes
        # The widest access a sidecar may grant (None: the folder's sidecars are trusted as they are).
        self.allowed_acl = frozenset(allowed_acl) if allowed_acl is not None else None

    def documents(self) -> Iterator[Document]:
        root = self.root.resolve()
        if not root.is_dir():
            raise ConfigError(
                f"connector {self.name!r}: folder {self.root} does not exist",
                hint="check the connector's root path",
            )
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part.startswith((".", "~$")) for part in rel.parts):
                continue  # hidden files and Office lock files are not documents
            if path.name.endswith(SIDECAR_SUFFIX) or not path.is_file() or not is_supported(path):
                continue
            rel_name = display_name(rel.as_posix())
            if not path.resolve().is_relative_to(root):
                log.warning("connector %r: %s points outside the folder; skipped", self.name, rel_name)
                yield Document(
                    id=f"{self.name}:{rel_name}", title=display_name(path.stem), source=self.name,
                    url=path.as_uri(), version="", acl=frozenset(), doc_type="file", metadata={"path": rel_name},
                    load=failing_loader(
                        f"{rel_name}: points outside the folder {self.root}; not read",
                        hint="copy the file into the folder if it should be indexed",
                    ),
                )  # fmt: skip
                continue
            yield self._document(path, rel_name, root)

    def _document(self, path: Path, rel: str, root: Path) -> Document:
        doc_id = f"{self.name}:{rel}"
        base: dict[str, Any] = {
            "id": doc_id,
            "source": self.name,
            "url": path.as_uri(),
            "metadata": {"path": rel},
        }
        try:
            version = _file_hash(path)
        except OSError as exc:
            return Document(
                **base, title=display_name(path.stem), version="", acl=frozenset(), doc_type="file",
                load=failing_loader(f"{rel}: cannot be read ({exc.strerror or exc})"),
            )  # fmt: skip
        try:
            sidecar = _read_sidecar(path, root)
        except ParseError as exc:
            # Listing must go on, but with the ACL unknown nobody may read the item, and its
            # load reports the broken sidecar so someone fixes it.
            log.warning("%s: %s", doc_id, exc)
            return Document(
                **base, title=display_name(path.stem), version=version, acl=frozenset(), doc_type="file",
                load=failing_loader(exc.message, exc.hint),
            )  # fmt: skip

        acl = sidecar_acl(sidecar, self.default_acl, doc_id)
        if self.allowed_acl is not None and acl - self.allowed_acl:
            log.warning("%s: sidecar grants %s beyond allowed_acl; dropped", doc_id, sorted(acl - self.allowed_acl))
            acl = acl & self.allowed_acl
        sidecar = sidecar or {}
        # What the connector sets (the path) wins over what a sidecar claims.
        metadata = {**{k: v for k, v in sidecar.items() if k not in _RESERVED_KEYS}, **base.pop("metadata")}
        return Document(
            **base,
            title=str(sidecar.get("title") or display_name(path.stem)),
            version=version,
            acl=acl,
            load=functools.partial(parse_file, path, max_bytes=self.max_bytes),
            metadata=metadata,
            doc_type=str(sidecar.get("contract_type") or "file"),
        )


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def display_name(name: str) -> str:
    """A file name as valid Unicode: bytes that are not UTF-8 (surrogate-escaped by the OS layer)
    become backslash escapes, so the same bytes always give the same id and it prints safely."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _read_sidecar(path: Path, root: Path) -> dict[str, Any] | None:
    sidecar_path = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar_path.exists():
        return None
    if not sidecar_path.resolve().is_relative_to(root):
        raise ParseError(
            f"sidecar {display_name(sidecar_path.name)} points outside the folder; not read",
            hint="a sidecar must be a file inside the folder",
        )
    try:
        raw = sidecar_path.read_bytes()
    except OSError as exc:
        raise ParseError(f"sidecar {display_name(sidecar_path.name)} cannot be read ({exc})") from exc
    return parse_sidecar(raw, display_name(sidecar_path.name))
