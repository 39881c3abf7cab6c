"""Optional Ed25519 signatures over audit record hashes.

The hash chain proves the records were not changed *relative to each other*; anyone with write
access can still rewrite the whole chain. A signature from a key kept outside the database (an
HSM, a secrets manager) proves the records were written by a holder of that key. The signature
covers the record hash, which already covers the record and its predecessor.
"""

from __future__ import annotations

from pathlib import Path

from sovra.errors import ConfigError


def _crypto():  # type: ignore[no-untyped-def]
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        return ed25519
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "signing the audit log needs the 'cryptography' package", hint="pip install cryptography"
        ) from exc


class Signer:
    """Signs record hashes with an Ed25519 private key."""

    def __init__(self, key: object) -> None:
        self._key = key

    @classmethod
    def load(cls, source: str | Path | bytes) -> Signer:
        """From a PEM file path, PEM bytes, or a 32-byte raw seed given as bytes or 64 hex chars."""
        ed25519 = _crypto()
        from cryptography.hazmat.primitives import serialization

        try:
            if isinstance(source, bytes) and len(source) == 32:
                return cls(ed25519.Ed25519PrivateKey.from_private_bytes(source))
            if isinstance(source, str) and len(source) == 64 and all(c in "0123456789abcdefABCDEF" for c in source):
                return cls(ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(source)))
            pem = source if isinstance(source, bytes) else Path(source).read_bytes()
            key = serialization.load_pem_private_key(pem, password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot load the audit signing key: {exc}", hint="give a PEM Ed25519 key or 64 hex chars"
            ) from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError("the audit signing key is not an Ed25519 key")
        return cls(key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(_crypto().Ed25519PrivateKey.generate())

    def sign(self, record_hash: str) -> str:
        return self._key.sign(bytes.fromhex(record_hash)).hex()  # type: ignore[attr-defined]

    @property
    def public_key_hex(self) -> str:
        from cryptography.hazmat.primitives import serialization

        pub = self._key.public_key()  # type: ignore[attr-defined]
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def signature_ok(public_key_hex: str, record_hash: str, signature_hex: str | None) -> bool:
    if not signature_hex:
        return False
    ed25519 = _crypto()
    from cryptography.exceptions import InvalidSignature

    try:
        ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(
            bytes.fromhex(signature_hex), bytes.fromhex(record_hash)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
