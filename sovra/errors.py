"""One small error hierarchy. Messages are written for the person who reads them, with a hint."""

from __future__ import annotations


class SovraError(Exception):
    """Base of every error Sovra raises on purpose. The CLI prints it as one line."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class ConfigError(SovraError):
    """A setting is missing or invalid."""


class InputError(SovraError):
    """The user gave input we cannot act on (empty question, unknown user, bad path)."""

    exit_code = 2


class UnknownUserError(InputError):
    """The asking user is not in the identity directory."""


class IndexMissingError(SovraError):
    """The search index does not exist yet or was built with another embedding model."""


class ParseError(SovraError):
    """A source file could not be read (corrupt, encrypted, unsupported, empty)."""


class ModelUnavailableError(SovraError):
    """The model server cannot be reached or answered with an error."""


class ModelOutputError(SovraError):
    """The model kept answering with output that does not match the requested schema."""


class AuditIntegrityError(SovraError):
    """The audit chain does not verify."""
