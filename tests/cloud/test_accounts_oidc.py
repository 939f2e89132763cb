"""OpenID Connect sign-in (issue 17.1) against a fake identity provider on httpx.MockTransport
(the provider is a network we do not own): PKCE S256, state used once, id_token signature, iss,
aud and nonce checked, and only existing, enabled users come in with their own role."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey

from cloud.accounts.settings import AccountSettings, OidcSettings
from cloud.auth.model import Role
from cloud.web.session import COOKIE
from tests.support.ledger_api import Api, api

pytestmark = pytest.mark.integration

ISSUER = "https://idp.example"
CLIENT = "coldtrace-test"


@dataclass
class Provider:
    """Discovery, JWKS and a token endpoint that answers with an id_token for ``who``."""

    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    )
    who: str = "qa-1"
    claims: dict[str, Any] = field(default_factory=dict)
    sign_with: RSAKey | None = None
    authorize: dict[str, str] = field(default_factory=dict)
    token_form: dict[str, str] = field(default_factory=dict)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
            })  # fmt: skip
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        if path == "/token":
            self.token_form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            now = int(time.time())
            claims = {
                "iss": ISSUER, "aud": CLIENT, "sub": "42", "iat": now, "exp": now + 300,
                "nonce": self.authorize["nonce"], "preferred_username": self.who,
                **self.claims,
            }  # fmt: skip
            key = self.sign_with or self.key
            token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
            return httpx.Response(200, json={"id_token": token, "token_type": "Bearer"})
        return httpx.Response(404)


@pytest.fixture
async def oidc(timescale_url: str) -> AsyncIterator[tuple[Api, Provider]]:
    cfg = OidcSettings(
        issuer=ISSUER, client_id=CLIENT, label="Example IdP",
        redirect_url="http://coldtrace/ui/login/oidc/callback",
    )  # fmt: skip
    provider = Provider()
    async with api(timescale_url, accounts=AccountSettings(oidc=cfg)) as a:
        transport = a.client._transport
        assert isinstance(transport, httpx.ASGITransport)
        app = transport.app
        assert isinstance(app, FastAPI)
        async with httpx.AsyncClient(transport=httpx.MockTransport(provider.handle)) as idp:
            app.state.oidc_http = idp
            yield a, provider


async def sign_in(a: Api, provider: Provider) -> httpx.Response:
    """The browser's trip: to the provider (which says yes at once) and back."""
    started = await a.client.get("/ui/login/oidc")
    assert started.status_code == 303
    target = urlsplit(started.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{ISSUER}/authorize"
    provider.authorize = {k: v[0] for k, v in parse_qs(target.query).items()}
    return await a.client.get(
        "/ui/login/oidc/callback", params={"code": "c0de", "state": provider.authorize["state"]}
    )


async def test_a_known_user_signs_in_through_the_provider(oidc: tuple[Api, Provider]) -> None:
    a, provider = oidc
    page = await a.client.get("/ui/login")
    assert "Sign in with Example IdP" in page.text
    back = await sign_in(a, provider)
    assert back.status_code == 200, back.text
    assert "url=/ui" in back.text
    assert "SameSite=strict" in back.headers["set-cookie"]
    assert COOKIE in a.client.cookies
    assert (await a.client.get("/ui")).status_code == 200
    asked = provider.authorize
    assert (asked["client_id"], asked["response_type"], asked["code_challenge_method"]) == (
        CLIENT, "code", "S256",
    )  # fmt: skip
    # PKCE: the verifier sent to the token endpoint hashes to the challenge sent before
    verifier = provider.token_form["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert asked["code_challenge"] == challenge.decode()
    assert provider.token_form["code"] == "c0de"
    # the state works once
    again = await a.client.get(
        "/ui/login/oidc/callback", params={"code": "c0de", "state": asked["state"]}
    )
    assert again.status_code == 401
    assert "start again" in again.text


async def test_a_callback_link_taken_to_another_browser_signs_no_one_in(
    oidc: tuple[Api, Provider],
) -> None:
    """Login CSRF: someone starts a sign-in as themselves, stops before the callback and sends
    its link to a colleague; the colleague's browser must not be signed in as them."""
    a, provider = oidc
    started = await a.client.get("/ui/login/oidc")
    assert started.status_code == 303
    kept = started.headers["set-cookie"]
    assert "HttpOnly" in kept
    assert "SameSite=lax" in kept  # followed by the provider's top-level redirect back
    assert "Path=/ui/login/oidc" in kept
    target = urlsplit(started.headers["location"])
    provider.authorize = {k: v[0] for k, v in parse_qs(target.query).items()}
    link = {"code": "c0de", "state": provider.authorize["state"]}
    a.client.cookies.clear()  # the other browser
    followed = await a.client.get("/ui/login/oidc/callback", params=link)
    assert followed.status_code == 401
    assert "not started in this browser" in followed.text
    assert COOKIE not in a.client.cookies
    assert provider.token_form == {}  # the code was never even exchanged
    # nor with a state cookie of a sign-in of its own
    await a.client.get("/ui/login/oidc")
    assert (await a.client.get("/ui/login/oidc/callback", params=link)).status_code == 401
    assert COOKIE not in a.client.cookies


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"claims": {"aud": "someone-else"}}, "id_token refused"),
        ({"claims": {"iss": "https://evil.example"}}, "id_token refused"),
        ({"claims": {"nonce": "replayed"}}, "id_token refused"),
        ({"claims": {"exp": 1_000_000}}, "id_token refused"),
        ({"sign_with": "other key"}, "id_token refused"),
        ({"who": "nobody-here"}, "no enabled, unlocked account"),
    ],
)
async def test_untrustworthy_answers_and_unknown_people_stay_out(
    oidc: tuple[Api, Provider], change: dict[str, Any], says: str
) -> None:
    a, provider = oidc
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    for name, value in change.items():
        setattr(provider, name, other if value == "other key" else value)
    back = await sign_in(a, provider)
    assert back.status_code == 401
    assert says in re.sub(r"\s+", " ", back.text)
    assert COOKIE not in a.client.cookies


async def test_without_a_provider_the_routes_are_absent(timescale_url: str) -> None:
    async with api(timescale_url) as a:
        assert (await a.client.get("/ui/login/oidc")).status_code == 404
        assert "/ui/login/oidc" not in (await a.client.get("/ui/login")).text
        assert (await a.client.get("/v1/me", headers=a.as_(Role.VIEWER))).status_code == 200
