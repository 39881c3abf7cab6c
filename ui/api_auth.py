"""Who is calling the HTTP API: static development tokens, or OIDC JWTs from a configured issuer.

A bearer token is first compared (in constant time) with the static tokens of
``SOVRA_API_TOKENS_FILE``; anything else that looks like a JWT is validated against the OIDC issuer
when one is configured (``SOVRA_OIDC_ISSUER``): signature with the issuer's published keys (JWKS,
found through ``<issuer>/.well-known/openid-configuration`` unless ``SOVRA_OIDC_JWKS_URL`` names it),
``iss``, ``aud``, ``exp`` (30 s leeway), and an algorithm from ``SOVRA_OIDC_ALGORITHMS`` (never
``none``, never a shared-secret HMAC). Validation uses PyJWT and its ``PyJWKClient`` key cache.

How a token's user and groups are found (the *group rule*):

- the user id is the ``SOVRA_OIDC_USERNAME_CLAIM`` claim (default ``preferred_username``);
- a user the identity directory knows gets the directory's groups, *narrowed* to the token's
  groups claim (``SOVRA_OIDC_GROUPS_CLAIM``, default ``groups``) when the token carries one: a group
  counts only if both the directory and the token grant it, so revoking a group at the identity
  provider takes effect at once and a token can never add a group the directory does not know;
- a user the directory does not know gets exactly the token's groups (none without the claim:
  such a user reads only what is public or shared with them by name).

The result is never more than the token, or the directory, grants.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request

from sovra.config import Settings
from sovra.errors import ConfigError, InputError, SovraError
from sovra.identity import ActingUserDirectory, Directory, User, user_from_login

log = logging.getLogger(__name__)

TOKENS_ENV = "SOVRA_API_TOKENS_FILE"
MIN_TOKEN_CHARS = 16  # also rules out the empty token, which a blank header could otherwise match
LEEWAY_S = 30
DISCOVERY_TTL_S = 3600.0


class ApiError(SovraError):
    """An error with an HTTP status of its own (authentication, access, unknown run)."""

    def __init__(self, status: int, message: str, hint: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message, hint)
        self.status = status
        self.headers = headers or {}


def unauthorized(message: str, hint: str | None = None) -> ApiError:
    return ApiError(401, message, hint, headers={"WWW-Authenticate": "Bearer"})


# ---------------------------------------------------------------------------------------------
# Static tokens


def load_tokens(path: Path) -> dict[str, str]:
    """Read ``{"<token>": "<user id>"}``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"API tokens file {path} does not exist", hint=f"create it or unset {TOKENS_ENV}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"API tokens file {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigError(f"API tokens file {path} must map token strings to user ids")
    return dict(raw)


def match_token(tokens: Mapping[str, str], presented: str) -> str | None:
    """The user id of ``presented``; compares with every token in constant time, without early exit."""
    found: str | None = None
    given = presented.encode("utf-8")
    for token, user_id in tokens.items():
        if hmac.compare_digest(token.encode("utf-8"), given):
            found = user_id
    return found


# ---------------------------------------------------------------------------------------------
# OIDC


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None
    username_claim: str
    groups_claim: str
    algorithms: tuple[str, ...]

    @classmethod
    def from_settings(cls, s: Settings) -> OidcConfig | None:
        if not s.oidc_issuer:
            return None
        if not s.oidc_audience:
            raise ConfigError(
                "SOVRA_OIDC_ISSUER is set but SOVRA_OIDC_AUDIENCE is not",
                hint="set it to the API's client id: without it a token issued to any other app would be accepted",
            )
        unsafe = [a for a in s.oidc_algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if unsafe or not s.oidc_algorithms:
            raise ConfigError(
                f"SOVRA_OIDC_ALGORITHMS must list public-key algorithms only, got {s.oidc_algorithms}",
                hint='e.g. ["RS256", "ES256"]',
            )
        return cls(
            issuer=s.oidc_issuer,
            audience=s.oidc_audience,
            jwks_url=s.oidc_jwks_url,
            username_claim=s.oidc_username_claim,
            groups_claim=s.oidc_groups_claim,
            algorithms=tuple(s.oidc_algorithms),
        )


class OidcValidator:
    """Validates JWTs of one issuer. Thread-safe; does blocking HTTP on a key-cache miss."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._jwks: Any = None  # jwt.PyJWKClient, built on first use (discovery needs the network)
        self._jwks_at = 0.0

    def _client(self) -> Any:
        import jwt

        with self._lock:
            stale = self.config.jwks_url is None and time.monotonic() - self._jwks_at > DISCOVERY_TTL_S
            if self._jwks is None or stale:
                url = self.config.jwks_url or self._discover()
                self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)
                self._jwks_at = time.monotonic()
            return self._jwks

    def _discover(self) -> str:
        import httpx

        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            r = httpx.get(url, timeout=10)
            r.raise_for_status()
            doc = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ApiError(503, f"cannot read the OIDC discovery document {url}: {exc}") from exc
        # OpenID Connect Discovery 1.0, 4.3: the document's issuer must be the one we asked.
        if doc.get("issuer") != self.config.issuer or not isinstance(doc.get("jwks_uri"), str):
            raise ApiError(503, f"the OIDC discovery document {url} names another issuer or no jwks_uri")
        return str(doc["jwks_uri"])

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims, or :class:`ApiError` 401 saying why it is refused."""
        import jwt

        cfg = self.config
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in cfg.algorithms:  # before any key fetch: 'none', HS256, junk
                raise unauthorized(f"token algorithm {header.get('alg')!r} is not accepted")
            key = self._client().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(cfg.algorithms),
                audience=cfg.audience,
                issuer=cfg.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("token expired", hint="get a new token from your identity provider") from exc
        except jwt.PyJWKClientConnectionError as exc:
            raise ApiError(503, f"cannot fetch the OIDC signing keys: {exc}") from exc
        except jwt.PyJWKClientError as exc:  # unknown kid, no kid, empty key set
            raise unauthorized(f"token signing key not found: {exc}") from exc
        except jwt.InvalidTokenError as exc:  # signature, audience, issuer, malformed, missing claim
            raise unauthorized(f"invalid token: {exc}") from exc
        return claims

    def user(self, claims: Mapping[str, Any], directory: Directory) -> User:
        """The user a validated token names, with groups by the module's group rule."""
        cfg = self.config
        user_id = claims.get(cfg.username_claim)
        if not isinstance(user_id, str) or not user_id.strip():
            raise unauthorized(f"the token has no {cfg.username_claim!r} claim")
        raw = claims.get(cfg.groups_claim)
        token_groups: set[str] | None = None
        if raw is not None:
            token_groups = {raw} if isinstance(raw, str) else {g for g in raw if isinstance(g, str)}
        return user_from_login(directory, user_id, claims.get("name"), token_groups)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


# ---------------------------------------------------------------------------------------------
# The request's user


class Authenticator:
    """Turns a bearer token into a :class:`User` (static tokens first, then OIDC)."""

    def __init__(self, settings: Settings, tokens: Mapping[str, str] | Path | None = None) -> None:
        if tokens is None and settings.api_tokens_file:
            tokens = Path(settings.api_tokens_file)
        # A tokens file is re-read when it changes (one stat per request): a token removed from it
        # stops working at the next request, without a restart.
        self._tokens_path = tokens if isinstance(tokens, Path) else None
        self._tokens_stamp = _stamp(self._tokens_path) if self._tokens_path else None
        self.tokens: dict[str, str] = _checked(load_tokens(tokens) if isinstance(tokens, Path) else dict(tokens or {}))
        oidc = OidcConfig.from_settings(settings)
        self.oidc = OidcValidator(oidc) if oidc else None
        if not self.tokens and self.oidc is None:
            log.warning(
                "no API tokens (%s) and no OIDC issuer: every authenticated request will be refused", TOKENS_ENV
            )

    def _refresh_tokens(self) -> None:
        path = self._tokens_path
        if path is None or (stamp := _stamp(path)) == self._tokens_stamp:
            return
        try:
            self.tokens = _checked(load_tokens(path))
        except ConfigError as exc:
            # Half-written, removed or weak: refuse every static token until it is fixed (closed).
            log.error("%s; static API tokens are refused until it is fixed", exc.message)
            self.tokens = {}
        self._tokens_stamp = stamp

    async def authenticate(self, presented: str, directory: Directory) -> User:
        self._refresh_tokens()
        user_id = match_token(self.tokens, presented)
        if user_id is not None:
            try:
                return directory.get(user_id)
            except InputError as exc:  # the token names a user the directory no longer has
                raise unauthorized("the token's user is not in the identity directory") from exc
        if self.oidc is not None and looks_like_jwt(presented):
            oidc = self.oidc
            # A key-cache miss fetches over HTTP: keep that off the event loop.
            claims = await anyio.to_thread.run_sync(oidc.claims, presented)
            return oidc.user(claims, directory)
        raise unauthorized("invalid token")


def _checked(tokens: dict[str, str]) -> dict[str, str]:
    if any(len(t) < MIN_TOKEN_CHARS for t in tokens):
        raise ConfigError(f"an API token is shorter than {MIN_TOKEN_CHARS} characters", hint="use long random tokens")
    return tokens


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# The user of the request being served, for RequestDirectory (see below).
_request_user: ContextVar[User | None] = ContextVar("sovra_api_user", default=None)


class RequestDirectory(ActingUserDirectory):
    """The identity directory as the runtime sees it during a request: the caller resolves to the
    user (and groups) their token established. The caller is kept in a context variable, which
    worker threads started with ``anyio.to_thread`` inherit."""

    def __init__(self, base: Directory) -> None:
        super().__init__(base, _request_user)


async def current_user(request: Request) -> User:
    """The user named by the request's bearer token (never by its body)."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise unauthorized("missing bearer token", hint="send Authorization: Bearer <token>")
    state = request.app.state
    user = await state.authenticator.authenticate(presented.strip(), state.directory.base)
    _request_user.set(user)
    return user  # type: ignore[no-any-return]


# Module level: with postponed annotations FastAPI resolves a dependency's type in module globals.
CurrentUser = Annotated[User, Depends(current_user)]


def has_principal(user: User, principals: list[str]) -> bool:
    return bool(set(user.principals) & set(principals))
