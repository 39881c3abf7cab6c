"""Authentication of the Teams bot, both directions of the Bot Connector protocol.

Incoming (connector -> bot): every activity carries ``Authorization: Bearer <JWT>`` signed by the
Bot Framework. ``BotConnectorTokenValidator`` checks it as Microsoft documents
(learn.microsoft.com, "Authenticate requests from the Bot Connector service to your bot"): RS256
only; a signing key from the JWKS named by the OpenID metadata document; issuer
``https://api.botframework.com``; audience = the bot's app id; ``exp``/``nbf`` within 5 minutes of
skew; the key endorses the activity's channel; the ``serviceUrl`` claim equals the activity's
serviceUrl. The metadata URL is a setting (``SOVRA_TEAMS_OPENID_METADATA_URL``), so tests serve a
local issuer signing with a test key.

Why not the SDK's ``JwtTokenValidator``: in microsoft-agents-hosting-core 1.9 it derives the JWKS
URL from the token's issuer and the tenant (login.botframework.com / login.microsoftonline.com, no
setting), so no local issuer can be trusted without patching the library, and it does not check
key endorsements. The rest of the request path (activity schema, turn handling, replies through
the connector client) is the SDK's own.

Outgoing (bot -> connector): replies carry a token from the OAuth 2.0 client-credentials grant
(``ClientCredentialsTokenProvider``), the same HTTP exchange MSAL performs, against a token URL
that is a setting (``SOVRA_TEAMS_TOKEN_URL``); MSAL itself insists on an https authority with
instance discovery, which no local fake can offer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from microsoft_agents.hosting.core import AgentAuthConfiguration
from microsoft_agents.hosting.core.authorization import AccessTokenProviderBase, ClaimsIdentity, Connections

from sovra.errors import ConfigError, SovraError

log = logging.getLogger(__name__)

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
LEEWAY_S = 300
KEYS_MAX_AGE_S = 24 * 3600
KEYS_MIN_REFRESH_S = 60  # an unknown kid refetches the keys, but not more often than this


class AuthFailure(SovraError):
    """An incoming request's token is missing or not valid (HTTP 401)."""


@dataclass
class _Keys:
    by_kid: dict[str, dict[str, Any]]
    fetched: float


class BotConnectorTokenValidator:
    def __init__(
        self,
        app_id: str,
        openid_metadata_url: str,
        issuers: list[str],
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not app_id:
            raise ConfigError("SOVRA_TEAMS_APP_ID is not set", hint="the bot's Microsoft app id (the token audience)")
        self.app_id = app_id
        self.metadata_url = openid_metadata_url
        self.issuers = set(issuers)
        self._http = http or httpx.AsyncClient(timeout=20)
        self._keys: _Keys | None = None
        self._lock = asyncio.Lock()

    async def _fetch_keys(self) -> _Keys:
        meta = (await self._http.get(self.metadata_url)).raise_for_status().json()
        jwks = (await self._http.get(meta["jwks_uri"])).raise_for_status().json()
        return _Keys({k["kid"]: k for k in jwks.get("keys", []) if "kid" in k}, time.monotonic())

    async def _key(self, kid: str) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            stale = self._keys is None or now - self._keys.fetched > KEYS_MAX_AGE_S
            unknown = self._keys is not None and kid not in self._keys.by_kid
            if stale or (unknown and now - self._keys.fetched > KEYS_MIN_REFRESH_S):  # type: ignore[union-attr]
                try:
                    self._keys = await self._fetch_keys()
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    log.warning("could not fetch the Bot Connector signing keys from %s: %s", self.metadata_url, exc)
                    if self._keys is None:
                        raise AuthFailure("signing keys unavailable") from exc
            assert self._keys is not None
            key = self._keys.by_kid.get(kid)
        if key is None:
            raise AuthFailure("unknown signing key")
        return key

    async def validate(self, authorization: str | None, activity: dict[str, Any]) -> ClaimsIdentity:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure("missing bearer token")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthFailure("malformed token") from exc
        if header.get("alg") != "RS256":
            raise AuthFailure("token algorithm not accepted")  # "none", HS256 with the public key...
        jwk = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=jwt.PyJWK(jwk, algorithm="RS256").key,
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=list(self.issuers),
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"invalid token ({type(exc).__name__})") from exc
        channel = str(activity.get("channelId") or "")
        endorsements = jwk.get("endorsements")
        if endorsements is not None and channel not in endorsements:
            raise AuthFailure("the signing key does not endorse this channel")
        claimed_url = str(claims.get("serviceurl") or claims.get("serviceUrl") or "")
        if not claimed_url or claimed_url.rstrip("/") != str(activity.get("serviceUrl") or "").rstrip("/"):
            raise AuthFailure("serviceUrl does not match the token")
        return ClaimsIdentity(claims, authentication_type="Bearer", security_token=token)

    async def aclose(self) -> None:
        await self._http.aclose()


# ---------------------------------------------------------------------------------------------
# Outgoing


class ClientCredentialsTokenProvider(AccessTokenProviderBase):
    """OAuth 2.0 client credentials against the Entra token endpoint, cached until near expiry."""

    def __init__(self, configuration: AgentAuthConfiguration, token_url: str, client_secret: str) -> None:
        self._configuration = configuration
        self.token_url = token_url
        self._secret = client_secret
        self._cache: dict[tuple[str, ...], tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return self._configuration

    async def get_access_token(self, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        scope = tuple(scopes or [BOT_FRAMEWORK_SCOPE])
        async with self._lock:
            cached = self._cache.get(scope)
            if cached and not force_refresh and cached[1] > time.monotonic():
                return cached[0]
            form = {
                "grant_type": "client_credentials",
                "client_id": self._configuration.CLIENT_ID or "",
                "client_secret": self._secret,
                "scope": " ".join(scope),
            }
            async with httpx.AsyncClient(timeout=20) as http:
                resp = await http.post(self.token_url, data=form)
            if resp.status_code != 200:
                error = resp.json().get("error", "") if "json" in resp.headers.get("content-type", "") else ""
                raise SovraError(
                    f"the bot could not get a token to reply ({resp.status_code} {error})".strip(),
                    hint="check SOVRA_TEAMS_APP_ID, SOVRA_TEAMS_APP_PASSWORD and SOVRA_TEAMS_TENANT_ID",
                )
            body = resp.json()
            token = str(body["access_token"])
            # Renew five minutes early: a token must not expire between being taken and being used.
            self._cache[scope] = (token, time.monotonic() + max(int(body.get("expires_in", 3600)) - 300, 30))
            return token

    def get_token_credential(self) -> Any:
        raise NotImplementedError("not used by the Teams bot")


class SingleConnection(Connections):
    """The SDK's connection manager, for one bot identity."""

    def __init__(self, provider: ClientCredentialsTokenProvider) -> None:
        self.provider = provider

    def get_connection(self, connection_name: str) -> AccessTokenProviderBase:
        return self.provider

    def get_default_connection(self) -> AccessTokenProviderBase:
        return self.provider

    def get_token_provider(self, claims_identity: ClaimsIdentity, service_url: str) -> AccessTokenProviderBase:
        return self.provider

    def get_token_provider_from_activity(
        self, claims_identity: ClaimsIdentity, activity: Any
    ) -> AccessTokenProviderBase:
        return self.provider

    def get_default_connection_configuration(self) -> AgentAuthConfiguration:
        return self.provider.configuration
