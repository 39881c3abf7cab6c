"""A contract store in an S3-compatible bucket (AWS S3, MinIO, Ceph, NetApp StorageGRID...).

Like the filesystem connector: each object may have a ``<key>.meta.json`` sidecar object with the
title, the access list and business metadata (counterparty, contract id, effective date). The
version is the object's ETag (plus the sidecar's, so a metadata edit is picked up): listing the
bucket is enough to know what changed, unchanged objects are never downloaded. Objects without
an access list are readable by nobody unless the connector has a ``default_acl``.

Credentials come from boto3's own chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws``, an instance role), never from Sovra's source configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

from sovra.connectors.base import SIDECAR_SUFFIX, failing_loader, parse_sidecar, sidecar_acl
from sovra.connectors.parsers import DEFAULT_MAX_BYTES, is_supported, parse_bytes
from sovra.documents import Document, Page
from sovra.errors import ConfigError, ParseError, SourceError

log = logging.getLogger(__name__)

_RESERVED_KEYS = {"title", "acl"}
_MAX_SIDECAR_BYTES = 1024 * 1024


class S3Connector:
    def __init__(
        self,
        bucket: str,
        name: str = "contracts",
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        default_acl: Iterable[str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout_s: float = 30.0,
        max_attempts: int = 4,
    ) -> None:
        if not bucket:
            raise ConfigError(f"connector {name!r}: no bucket configured", hint="set bucket = 'contracts'")
        self.bucket = bucket
        self.name = name
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.default_acl = frozenset(default_acl) if default_acl is not None else None
        self.max_bytes = max_bytes
        self._client_args = {"endpoint_url": endpoint_url, "region_name": region}
        self._timeouts = (timeout_s, max_attempts)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            timeout_s, attempts = self._timeouts
            config = Config(
                connect_timeout=timeout_s,
                read_timeout=timeout_s,
                retries={"max_attempts": attempts, "mode": "standard"},  # backs off on SlowDown/503
            )
            self._client = boto3.client("s3", config=config, **{k: v for k, v in self._client_args.items() if v})
        return self._client

    def documents(self) -> Iterator[Document]:
        objects: dict[str, dict[str, Any]] = {}
        for obj in self._list():
            objects[obj["Key"]] = obj
        for key in sorted(objects):
            rel = key[len(self.prefix) :] if key.startswith(self.prefix) else key
            if key.endswith(SIDECAR_SUFFIX) or key.endswith("/") or not is_supported(key):
                continue
            if any(part.startswith((".", "~$")) for part in PurePosixPath(rel).parts):
                continue
            yield self._document(key, rel, objects[key], objects.get(key + SIDECAR_SUFFIX))

    def _list(self) -> Iterator[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                yield from page.get("Contents") or []
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ConfigError(
                    f"connector {self.name!r}: cannot list s3://{self.bucket}/{self.prefix} ({code})",
                    hint="check the bucket name and the AWS_* credentials (s3:ListBucket, s3:GetObject)",
                ) from exc
            raise SourceError(f"connector {self.name!r}: listing s3://{self.bucket} failed ({code}: {exc})") from exc
        except BotoCoreError as exc:
            raise SourceError(
                f"connector {self.name!r}: cannot reach the object store "
                f"{self.endpoint_url or 'AWS S3'} ({type(exc).__name__}: {exc})",
                hint="check endpoint_url and the network",
            ) from exc

    def _document(self, key: str, rel: str, obj: dict[str, Any], sidecar_obj: dict[str, Any] | None) -> Document:
        etag = str(obj.get("ETag", "")).strip('"')
        version = etag + (f";meta={str(sidecar_obj.get('ETag', '')).strip(chr(34))}" if sidecar_obj else "")
        base: dict[str, Any] = {
            "id": f"{self.name}:{rel}",
            "source": self.name,
            "url": f"s3://{self.bucket}/{key}",
            "version": version,
            "doc_type": "file",
        }
        metadata: dict[str, Any] = {"path": rel, "size": obj.get("Size")}
        sidecar: dict[str, Any] | None = None
        if sidecar_obj is not None:
            try:
                sidecar = parse_sidecar(self._get(key + SIDECAR_SUFFIX, _MAX_SIDECAR_BYTES), rel + SIDECAR_SUFFIX)
            except (ParseError, SourceError) as exc:
                # ACL unknown: nobody may read the item, and load() reports the sidecar problem.
                log.warning("%s: %s", base["id"], exc.message)
                return Document(**base, title=PurePosixPath(rel).stem, acl=frozenset(),
                                load=failing_loader(exc.message, exc.hint), metadata=metadata)  # fmt: skip
        acl = sidecar_acl(sidecar, self.default_acl, base["id"])
        sidecar = sidecar or {}
        metadata.update({k: v for k, v in sidecar.items() if k not in _RESERVED_KEYS})
        if sidecar.get("contract_type"):
            base["doc_type"] = str(sidecar["contract_type"])
        return Document(
            **base,
            title=str(sidecar.get("title") or PurePosixPath(rel).stem),
            acl=acl,
            load=self._loader(key, rel, int(obj.get("Size") or 0)),
            metadata=metadata,
        )

    def _loader(self, key: str, rel: str, size: int) -> Callable[[], list[Page]]:
        if size > self.max_bytes:
            return failing_loader(
                f"{rel}: the file is {size / 1e6:.1f} MB, over the {self.max_bytes / 1e6:.1f} MB limit",
                hint="split the file or raise SOVRA_MAX_FILE_BYTES",
            )

        def load() -> list[Page]:
            return parse_bytes(self._get(key, self.max_bytes), PurePosixPath(rel).name, self.max_bytes)

        return load

    def _get(self, key: str, cap: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            data = body.read(cap + 1)
            body.close()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise SourceError(f"{key}: cannot be downloaded ({code})") from exc
        except BotoCoreError as exc:
            raise SourceError(f"{key}: download failed ({type(exc).__name__}: {exc})") from exc
        if len(data) > cap:
            raise ParseError(f"{key}: the object is over the {cap / 1e6:.1f} MB limit")
        return bytes(data)
