"""A folder of files, each optionally described by a ``<file>.meta.json`` sidecar.

The sidecar carries the title, the access list and business metadata (counterparty, contract
id, dates). A file without an access list is readable by nobody unless the connector was given
a ``default_acl``: making a document public must be a decision, not an accident.
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
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.default_acl = frozenset(default_acl) if default_acl is not None else None
        self.max_bytes = max_bytes

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
            yield self._document(path, rel.as_posix())

    def _document(self, path: Path, rel: str) -> Document:
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
                **base, title=path.stem, version="", acl=frozenset(), doc_type="file",
                load=failing_loader(f"{rel}: cannot be read ({exc.strerror or exc})"),
            )  # fmt: skip
        try:
            sidecar = _read_sidecar(path)
        except ParseError as exc:
            # Listing must go on, but with the ACL unknown nobody may read the item, and its
            # load reports the broken sidecar so someone fixes it.
            log.warning("%s: %s", doc_id, exc)
            return Document(
                **base, title=path.stem, version=version, acl=frozenset(), doc_type="file",
                load=failing_loader(exc.message, exc.hint),
            )  # fmt: skip

        acl = sidecar_acl(sidecar, self.default_acl, doc_id)
        sidecar = sidecar or {}
        metadata = {**base.pop("metadata"), **{k: v for k, v in sidecar.items() if k not in _RESERVED_KEYS}}
        return Document(
            **base,
            title=str(sidecar.get("title") or path.stem),
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


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    sidecar_path = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar_path.exists():
        return None
    try:
        raw = sidecar_path.read_bytes()
    except OSError as exc:
        raise ParseError(f"sidecar {sidecar_path.name} cannot be read ({exc})") from exc
    return parse_sidecar(raw, sidecar_path.name)
