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


class DefinitionError(SovraError, TypeError):
    """An agent, tool or connector was defined wrongly (raised when it is defined, not when it runs)."""


class InputError(SovraError):
    """The user gave input we cannot act on (empty question, unknown user, bad path)."""

    exit_code = 2


class UnknownUserError(InputError):
    """The asking user is not in the identity directory."""


class IndexMissingError(SovraError):
    """The search index does not exist yet or was built with another embedding model."""


class ParseError(SovraError):
    """A source file could not be read (corrupt, encrypted, unsupported, empty)."""


class SourceError(SovraError):
    """A source could not be reached or answered badly (network, throttling, garbage). Unlike a
    ``ParseError`` it may pass: a delta sync does not move its cursor past an item that hit it."""


class ModelUnavailableError(SovraError):
    """The model server cannot be reached or answered with an error."""


class ModelOutputError(SovraError):
    """The model kept answering with output that does not match the requested schema."""


class AuditIntegrityError(SovraError):
    """The audit chain does not verify."""


class BudgetExceeded(SovraError):
    """A run went past one of its limits (steps, tokens, wall time) and was stopped."""


class RunCancelled(SovraError):
    """A run was cancelled (``Runtime.cancel``) and stopped at its next step."""


class ApprovalError(SovraError):
    """An approval cannot be given: no such pending run, or the approver may not decide it."""

    exit_code = 2


def redact_url(url: str) -> str:
    """``url`` fit for a message or a log line: credentials in it (user:password@, token=...) masked."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    secret = ("key", "token", "secret", "password", "sig", "signature", "code")
    query = urlencode(
        [(k, "***" if any(s in k.lower() for s in secret) else v) for k, v in parse_qsl(parts.query, True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
