"""A local OpenID Connect issuer: discovery document and JWKS over real HTTP on 127.0.0.1.

Shapes follow OpenID Connect Discovery 1.0 (``/.well-known/openid-configuration`` with ``issuer``
and ``jwks_uri``) and RFC 7517 (a JWK Set of RSA public keys with ``kid``, ``use``, ``alg``), as
Keycloak and Entra ID serve them. ``mint`` signs tokens with the issuer's key (or any other) so
tests can make valid, expired, mis-addressed and forged tokens.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AUDIENCE = "sovra-api"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeIssuer:
    def __init__(self) -> None:
        self.key = new_key()
        self.kid = "test-key-1"
        self.url = ""  # set once serving
        self.requests: list[str] = []

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [jwk | {"kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/protocol/openid-connect/certs",
            "authorization_endpoint": f"{self.url}/protocol/openid-connect/auth",
            "token_endpoint": f"{self.url}/protocol/openid-connect/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def claims(self, user: str, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": f"sub-{user}",
            "preferred_username": user,
            "iat": now,
            "exp": now + 300,
        } | extra

    def mint(self, user: str, *, key: Any = None, kid: str | None = None, alg: str = "RS256", **claims: Any) -> str:
        body = self.claims(user, **claims)
        return jwt.encode(body, key or self.key, algorithm=alg, headers={"kid": kid or self.kid})


@contextmanager
def serve_issuer(realm: str = "/realms/bank") -> Iterator[FakeIssuer]:
    issuer = FakeIssuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer.requests.append(self.path)
            if self.path == f"{realm}/.well-known/openid-configuration":
                body = issuer.discovery()
            elif self.path == f"{realm}/protocol/openid-connect/certs":
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "max-age=300")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.url = f"http://127.0.0.1:{server.server_port}{realm}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
