"""OIDC bearer tokens against a local issuer (discovery + JWKS over HTTP on 127.0.0.1), through a
real uvicorn server: what is accepted, what is refused with 401, and which groups a user gets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from fakes.chat_agent import serve_asgi
from fakes.oidc_issuer import AUDIENCE, FakeIssuer, new_key, serve_issuer

from sovra.config import Settings
from sovra.errors import ConfigError
from sovra.evals.bench_api import EchoAgent
from sovra.ui.api import create_app

USERS = {
    "alice": {"name": "Alice Martin", "groups": ["employees"]},
    "bob": {"name": "Bob Schneider", "groups": ["employees", "finance"]},
    "erin": {"name": "Erin Auditor", "groups": ["employees", "auditor"]},
}
STATIC = {"alice-static-token-0123456789": "alice"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    with serve_issuer() as iss:
        yield iss


@pytest.fixture(scope="module")
def api(issuer, tmp_path_factory) -> Iterator[httpx.Client]:
    data = tmp_path_factory.mktemp("api-auth")
    (data / "users.json").write_text(json.dumps(USERS))
    # No JWKS URL: found through the issuer's discovery document.
    settings = Settings(data_dir=data, oidc_issuer=issuer.url, oidc_audience=AUDIENCE)
    app = create_app(settings, tokens=STATIC, agents={"echo": EchoAgent})
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ask(api: httpx.Client, token: str, question: str = "hotel limit?") -> httpx.Response:
    return api.post("/v1/ask", json={"question": question, "agent": "echo"}, headers=bearer(token))


def run_groups(api: httpx.Client, run_id: str, token: str) -> list[str]:
    """The groups the run was recorded with (what retrieval filtered on)."""
    r = api.get(f"/v1/runs/{run_id}/audit", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["groups"]


def test_a_valid_token_is_accepted_via_discovery(api, issuer):
    token = issuer.mint("alice", groups=["employees"])
    r = ask(api, token)
    assert r.status_code == 200, r.text
    assert r.json()["user"] == "alice"
    assert any(p.endswith("/.well-known/openid-configuration") for p in issuer.requests)
    assert any(p.endswith("/certs") for p in issuer.requests)


def test_static_development_tokens_still_work(api):
    r = ask(api, next(iter(STATIC)))
    assert r.status_code == 200 and r.json()["user"] == "alice"


def _forged(issuer: FakeIssuer) -> str:
    """Right kid, right claims, signed with another key."""
    return issuer.mint("alice", key=new_key())


def _alg_none(issuer: FakeIssuer) -> str:
    return jwt.encode(issuer.claims("alice"), None, algorithm="none", headers={"kid": issuer.kid})


def _hs256_with_public_key(issuer: FakeIssuer) -> str:
    """Algorithm confusion: HMAC keyed with the issuer's public key (which anyone can fetch)."""
    import base64
    import hashlib
    import hmac

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    from cryptography.hazmat.primitives import serialization

    pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    body = b64(json.dumps(issuer.claims("alice")).encode())
    sig = b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def _tampered(issuer: FakeIssuer) -> str:
    """A valid token whose payload was edited afterwards (alice -> bob)."""
    import base64

    head, body, sig = issuer.mint("alice").split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["preferred_username"] = "bob"
    new_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{new_body}.{sig}"


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda i: i.mint("alice", exp=int(time.time()) - 3600), "token expired"),
        (lambda i: i.mint("alice", aud="another-app"), "audience"),
        (lambda i: i.mint("alice", iss="https://evil.example/realms/bank"), "issuer"),
        (_alg_none, "algorithm 'none' is not accepted"),
        (_hs256_with_public_key, "algorithm 'HS256' is not accepted"),
        (_forged, "signature"),
        (_tampered, "signature"),
        (lambda i: i.mint("alice", kid="no-such-key"), "signing key not found"),
        (lambda i: i.mint("alice", aud=None), "aud"),
        (lambda i: "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "invalid token"),
    ],
    ids=[
        "expired",
        "audience",
        "issuer",
        "alg-none",
        "hs256-confusion",
        "forged",
        "tampered",
        "unknown-kid",
        "no-aud",
        "garbage",
    ],
)
def test_bad_tokens_are_401(api, issuer, make, text):
    r = ask(api, make(issuer))
    assert r.status_code == 401, r.text
    assert text.lower() in r.json()["error"].lower(), r.json()
    assert r.headers["www-authenticate"] == "Bearer"
    assert "Traceback" not in r.text


def test_token_without_the_username_claim_is_401(api, issuer):
    token = jwt.encode(
        {k: v for k, v in issuer.claims("x").items() if k != "preferred_username"},
        issuer.key,
        algorithm="RS256",
        headers={"kid": issuer.kid},
    )
    r = ask(api, token)
    assert r.status_code == 401 and "preferred_username" in r.json()["error"]


def test_directory_groups_are_narrowed_by_the_token(api, issuer):
    # bob is finance in the directory; a token that no longer lists finance does not give it.
    token = issuer.mint("bob", groups=["employees"])
    r = ask(api, token)
    assert r.status_code == 200, r.text
    erin = issuer.mint("erin", groups=["employees", "auditor"])
    assert run_groups(api, r.json()["run_id"], erin) == ["employees"]
    # A token cannot add a group the directory does not grant.
    token = issuer.mint("bob", groups=["employees", "finance", "risk-committee", "auditor"])
    r = ask(api, token)
    assert run_groups(api, r.json()["run_id"], erin) == ["employees", "finance"]
    # ... so it cannot make bob an auditor either.
    assert api.get("/v1/runs?owner=*", headers=bearer(token)).status_code == 403


def test_directory_groups_when_the_token_has_no_groups_claim(api, issuer):
    r = ask(api, issuer.mint("bob"))
    erin = issuer.mint("erin", groups=["employees", "auditor"])
    assert run_groups(api, r.json()["run_id"], erin) == ["employees", "finance"]


def test_a_user_unknown_to_the_directory_gets_the_tokens_groups(api, issuer):
    token = issuer.mint("zoe", groups=["employees", "finance"], name="Zoe New")
    r = ask(api, token)
    assert r.status_code == 200, r.text
    assert r.json()["user"] == "zoe"
    assert run_groups(api, r.json()["run_id"], token) == ["employees", "finance"]
    # Without a groups claim such a user has no group at all (public documents only).
    bare = issuer.mint("yann")
    r = ask(api, bare)
    assert r.status_code == 200 and run_groups(api, r.json()["run_id"], bare) == []


def test_two_users_at_once_keep_their_own_groups(api, issuer):
    """The caller's identity is per request (a context variable), never shared between requests."""
    import asyncio

    zoe = issuer.mint("zoe", groups=["finance"])
    yann = issuer.mint("yann", groups=["legal"])
    erin = issuer.mint("erin", groups=["employees", "auditor"])

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(api.base_url), timeout=60) as c:
            reqs = [
                c.post("/v1/ask", json={"question": f"q{i}", "agent": "echo"}, headers=bearer(t))
                for i, t in enumerate([zoe, yann] * 4)
            ]
            return await asyncio.gather(*reqs)

    for r in asyncio.run(both()):
        assert r.status_code == 200, r.text
        expected = {"zoe": ["finance"], "yann": ["legal"]}[r.json()["user"]]
        assert run_groups(api, r.json()["run_id"], erin) == expected


def test_jwks_url_without_discovery(issuer, tmp_path):
    (tmp_path / "users.json").write_text(json.dumps(USERS))
    settings = Settings(
        data_dir=tmp_path,
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=issuer.discovery()["jwks_uri"],
        oidc_username_claim="sub",
    )
    with serve_asgi(create_app(settings, tokens={}, agents={"echo": EchoAgent})) as url:
        before = len([p for p in issuer.requests if "well-known" in p])
        r = httpx.post(f"{url}/v1/ask", json={"question": "hi", "agent": "echo"}, headers=bearer(issuer.mint("al")))
        assert r.status_code == 200 and r.json()["user"] == "sub-al", r.text
        assert len([p for p in issuer.requests if "well-known" in p]) == before


def test_an_issuer_that_cannot_be_reached_is_503_not_401(tmp_path, issuer):
    (tmp_path / "users.json").write_text(json.dumps(USERS))
    settings = Settings(data_dir=tmp_path, oidc_issuer=issuer.url + "/nowhere", oidc_audience=AUDIENCE)
    with serve_asgi(create_app(settings, tokens={}, agents={"echo": EchoAgent})) as url:
        r = httpx.get(f"{url}/v1/runs", headers=bearer(issuer.mint("alice")))
        assert r.status_code == 503 and "discovery" in r.json()["error"], r.text


def test_oidc_configuration_mistakes_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="AUDIENCE"):
        create_app(Settings(data_dir=tmp_path, oidc_issuer="https://idp.example/realms/bank"))
    with pytest.raises(ConfigError, match="public-key algorithms"):
        create_app(
            Settings(
                data_dir=tmp_path,
                oidc_issuer="https://idp.example/realms/bank",
                oidc_audience="sovra",
                oidc_algorithms=["RS256", "HS256"],
            )
        )
