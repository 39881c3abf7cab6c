"""Microsoft Graph over HTTP: app-only tokens from msal, and a client that survives throttling.

``GraphAuth`` gets client-credentials tokens (client secret or certificate) through msal's
``ConfidentialClientApplication`` and its token cache; ``GraphClient`` sends requests with httpx,
honours ``Retry-After`` on 429/503 with bounded retries and exponential backoff, refreshes the token
once on a 401, and turns every transport problem (timeout, refused connection, garbage body)
into a ``SourceError`` naming what failed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sovra.errors import ConfigError, ParseError, SourceError

log = logging.getLogger(__name__)

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
_RETRY_STATUS = frozenset({429, 502, 503, 504})


class ResyncRequired(SourceError):
    """Graph answered 410 Gone to a delta link: the token expired and a full enumeration is needed."""


class GraphAuth:
    """App-only (client credentials) tokens for Graph, cached by msal until shortly before expiry."""

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str | None = None,
        certificate_path: Path | str | None = None,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        scope: str = "https://graph.microsoft.com/.default",
        timeout_s: float = 30.0,
        ca_bundle: str | None = None,
    ) -> None:
        import msal

        if not tenant_id or not client_id:
            raise ConfigError(
                "the Graph connector needs a tenant id and a client id", hint="set tenant_id and client_id"
            )
        credential: Any
        if certificate_path:
            credential = _certificate_credential(Path(certificate_path))
        elif client_secret:
            credential = client_secret
        else:
            raise ConfigError(
                "the Graph connector needs a client secret or a certificate",
                hint="set SOVRA_GRAPH_CLIENT_SECRET (or _FILE) or SOVRA_GRAPH_CERTIFICATE_FILE",
            )
        self.scopes = [scope]
        self.cache = msal.SerializableTokenCache()
        custom = authority_host.rstrip("/") != DEFAULT_AUTHORITY_HOST
        try:
            self._app = msal.ConfidentialClientApplication(
                client_id,
                client_credential=credential,
                authority=f"{authority_host.rstrip('/')}/{tenant_id}",
                token_cache=self.cache,
                timeout=timeout_s,
                http_client=_requests_session(ca_bundle, timeout_s) if ca_bundle else None,
                # A sovereign cloud or a test double: do not ask login.microsoftonline.com about it.
                validate_authority=not custom,
                instance_discovery=False if custom else None,
            )
        except ValueError as exc:
            raise ConfigError(f"invalid Graph authority or credential: {exc}") from exc
        except Exception as exc:  # msal fetches the OpenID configuration here
            raise SourceError(
                f"cannot reach the Microsoft identity platform at {authority_host} ({type(exc).__name__}: {exc})",
                hint="check the network and SOVRA_GRAPH_AUTHORITY_HOST",
            ) from exc

    def token(self) -> str:
        try:
            result = self._app.acquire_token_for_client(scopes=self.scopes)
        except Exception as exc:  # requests' errors, msal's ValueError on a bad answer
            raise SourceError(f"cannot get a Graph token ({type(exc).__name__}: {exc})") from exc
        if "access_token" not in result:
            raise SourceError(
                f"the identity platform refused the client credentials: {result.get('error')}: "
                f"{(result.get('error_description') or '').splitlines()[0] if result.get('error_description') else ''}",
                hint="check the tenant id, client id and secret/certificate, and the app's Graph permissions",
            )
        return str(result["access_token"])

    def invalidate(self) -> None:
        """Forget cached access tokens, so the next ``token()`` asks for a new one."""
        for entry in list(self.cache.search(self.cache.CredentialType.ACCESS_TOKEN)):
            self.cache.remove_at(entry)


def _requests_session(ca_bundle: str, timeout_s: float) -> Any:
    """msal's HTTP client trusting ``ca_bundle``. Given per request: requests lets
    REQUESTS_CA_BUNDLE override a session-wide ``verify`` (psf/requests#3829)."""
    import functools

    import requests

    session = requests.Session()
    session.request = functools.partial(session.request, verify=ca_bundle, timeout=timeout_s)  # type: ignore[method-assign]
    return session


def _certificate_credential(path: Path) -> dict[str, str]:
    """msal's credential for a PEM file holding the private key and its certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        pem = path.read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the Graph client certificate {path} ({exc})",
            hint="a PEM file with the private key and the certificate",
        ) from exc
    return {
        "private_key": pem.decode(),
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),
        "public_certificate": cert.public_bytes(_pem_encoding()).decode(),
    }


def _pem_encoding() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.PEM


class GraphClient:
    """GET JSON and download content from Graph with retries; one httpx client per connector."""

    def __init__(
        self,
        auth: GraphAuth,
        base_url: str = DEFAULT_GRAPH_URL,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        ca_bundle: str | None = None,
    ) -> None:
        self.auth = auth
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.sleep = sleep
        self.timeout_s = timeout_s
        # ca_bundle: a private CA (a TLS-inspecting proxy, a sovereign cloud, a test double).
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, verify=ca_bundle or True)

    def close(self) -> None:
        self._http.close()

    def url(self, path_or_url: str) -> str:
        return path_or_url if path_or_url.startswith(("http://", "https://")) else f"{self.base_url}{path_or_url}"

    def get_json(self, path_or_url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        url = self.url(path_or_url)
        resp = self._send(url, headers or {}, authorized=True)
        try:
            data = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourceError(
                f"Graph returned a body that is not JSON for {_short(url)} ({exc})",
                hint="a proxy or the service is failing; try again later",
            ) from exc
        if not isinstance(data, dict):
            raise SourceError(f"Graph returned unexpected JSON for {_short(url)} (not an object)")
        return data

    def download(self, path_or_url: str, max_bytes: int) -> bytes:
        """``/content`` answers 302 with a pre-authenticated download URL; the bearer token is
        sent to Graph only, never to the download host."""
        url = self.url(path_or_url)
        resp = self._send(url, {}, authorized=True)
        if resp.status_code in (301, 302, 303, 307, 308):
            location = resp.headers.get("location")
            if not location:
                raise SourceError(f"Graph redirected {_short(url)} without a Location")
            return self._fetch_capped(httpx.URL(url).join(location), max_bytes)
        return _capped(resp.content, max_bytes, url)

    def _fetch_capped(self, url: httpx.URL, max_bytes: int) -> bytes:
        for attempt in range(self.max_retries + 1):
            try:
                with self._http.stream("GET", url) as resp:
                    if resp.status_code in _RETRY_STATUS and attempt < self.max_retries:
                        self._wait(resp, attempt, str(url))
                        continue
                    if resp.status_code >= 400:
                        raise SourceError(f"the download of {_short(str(url))} failed with HTTP {resp.status_code}")
                    declared = int(resp.headers.get("content-length") or 0)
                    if declared > max_bytes:
                        raise ParseError(
                            f"the file is {declared / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit",
                            hint="split the file or raise the connector's max_bytes",
                        )
                    body = bytearray()
                    for block in resp.iter_bytes():
                        body += block
                        if len(body) > max_bytes:
                            raise ParseError(f"the file is over the {max_bytes / 1e6:.1f} MB limit")
                    return bytes(body)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise _transport_error(exc, str(url), self.timeout_s) from exc
                self.sleep(self._backoff(attempt))
        raise SourceError(f"the download of {_short(str(url))} kept failing")  # pragma: no cover

    def _send(self, url: str, headers: dict[str, str], authorized: bool) -> httpx.Response:
        refreshed = False
        attempt = 0
        while True:
            hdrs = dict(headers)
            if authorized:
                hdrs["Authorization"] = f"Bearer {self.auth.token()}"
            try:
                resp = self._http.get(url, headers=hdrs)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise _transport_error(exc, url, self.timeout_s) from exc
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            if resp.status_code == 401 and authorized and not refreshed:
                # The token expired or was revoked before msal's cached expiry: get a new one, once.
                log.info("Graph answered 401 for %s; refreshing the token", _short(url))
                self.auth.invalidate()
                refreshed = True
                continue
            if resp.status_code in _RETRY_STATUS and attempt < self.max_retries:
                self._wait(resp, attempt, url)
                attempt += 1
                continue
            if resp.status_code == 410:
                raise ResyncRequired(f"Graph says the delta link for {_short(url)} expired (410)")
            if resp.status_code >= 400:
                raise SourceError(
                    f"Graph answered HTTP {resp.status_code} for {_short(url)}: {_graph_error(resp)}",
                    hint=_hint(resp.status_code),
                )
            return resp

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_wait_s, self.backoff_s * 2**attempt))

    def _wait(self, resp: httpx.Response, attempt: int, url: str) -> None:
        retry_after = resp.headers.get("retry-after", "")
        wait = float(retry_after) if retry_after.strip().isdigit() else self._backoff(attempt)
        wait = min(wait, self.max_wait_s)
        log.info("Graph answered %s for %s; retrying in %.1fs", resp.status_code, _short(url), wait)
        self.sleep(wait)


def _capped(body: bytes, max_bytes: int, url: str) -> bytes:
    if len(body) > max_bytes:
        raise ParseError(f"{_short(url)}: the file is over the {max_bytes / 1e6:.1f} MB limit")
    return body


def _transport_error(exc: httpx.TransportError, url: str, timeout_s: float) -> SourceError:
    if isinstance(exc, httpx.TimeoutException):
        return SourceError(
            f"Graph did not answer within {timeout_s:g}s for {_short(url)}",
            hint="the service hangs or the network is slow; raise the timeout or try later",
        )
    return SourceError(
        f"cannot reach Graph at {httpx.URL(url).host} ({type(exc).__name__}: {exc})",
        hint="check the network, a proxy, and SOVRA_GRAPH_URL",
    )


def _graph_error(resp: httpx.Response) -> str:
    try:
        err = resp.json().get("error") or {}
        return f"{err.get('code', '')}: {err.get('message', '')}".strip(": ") or resp.reason_phrase
    except Exception:
        return resp.reason_phrase


def _hint(status: int) -> str | None:
    if status == 403:
        return "grant the app Sites.Read.All (or Sites.Selected for this site) with admin consent"
    if status == 404:
        return "check the site and drive names of the source"
    if status in _RETRY_STATUS:
        return "Graph is throttling or unavailable; the next sync resumes where this one stopped"
    return None


def _short(url: str) -> str:
    """A URL without its query string: delta tokens and download signatures stay out of logs."""
    return url.split("?", 1)[0]
