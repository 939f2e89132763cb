"""OpenID Connect sign-in: authorization code flow with PKCE (S256), state and nonce.

``start`` records a pending sign-in and gives the provider's authorization URL; ``finish``
takes the callback's code and state (each state works once, within ``PENDING``), exchanges the
code at the token endpoint, and checks the id_token's signature (the provider's JWKS) and its
``iss``, ``aud``, ``exp`` and ``nonce`` claims. It returns the user name the configured claim
carries; who that is and whether they may sign in is the caller's question.
Authlib gives the PKCE and URL helpers; joserfc (Authlib's JOSE library) checks the token.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.accounts import SignInError
from cloud.accounts.settings import OidcSettings

PENDING = timedelta(minutes=10)
"""How long a sign-in started at the provider may take."""
LEEWAY_S = 60
"""Clock difference with the provider tolerated on ``exp``/``iat``."""


class OidcError(SignInError):
    """The provider's answer cannot be trusted or is not a sign-in."""


def _digest(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


async def _json(http: httpx.AsyncClient, method: str, url: str, **kw: Any) -> dict[str, Any]:
    try:
        response = await http.request(method, url, **kw)
        response.raise_for_status()
        found = response.json()
    except (httpx.HTTPError, ValueError) as err:
        raise OidcError(f"identity provider: {url}: {err}") from err
    if not isinstance(found, dict):
        raise OidcError(f"identity provider: {url}: not a JSON object")
    return found


async def discover(http: httpx.AsyncClient, cfg: OidcSettings) -> dict[str, Any]:
    meta = await _json(http, "GET", cfg.issuer.rstrip("/") + "/.well-known/openid-configuration")
    if meta.get("issuer") != cfg.issuer:
        raise OidcError(f"identity provider says it is {meta.get('issuer')!r}, not {cfg.issuer!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(key), str):
            raise OidcError(f"identity provider's configuration lacks {key}")
    return meta


async def start(conn: AsyncConnection[TupleRow], http: httpx.AsyncClient, cfg: OidcSettings) -> str:
    """Records a pending sign-in; the URL to send the browser to."""
    meta = await discover(http, cfg)
    state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
    await conn.execute("DELETE FROM oidc_logins WHERE created_at < now() - %s", (PENDING,))
    await conn.execute(
        "INSERT INTO oidc_logins (state_hash, nonce, verifier) VALUES (%s, %s, %s)",
        (_digest(state), nonce, verifier),
    )
    url: str = add_params_to_uri(
        meta["authorization_endpoint"],
        [
            ("response_type", "code"), ("client_id", cfg.client_id),
            ("redirect_uri", cfg.redirect_url), ("scope", "openid profile email"),
            ("state", state), ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )  # fmt: skip
    return url


async def finish(
    conn: AsyncConnection[TupleRow],
    http: httpx.AsyncClient,
    cfg: OidcSettings,
    *,
    code: str,
    state: str,
) -> str:
    """The user name of a completed sign-in (the configured claim of a valid id_token)."""
    cur = await conn.execute(
        "DELETE FROM oidc_logins WHERE state_hash = %s AND created_at > now() - %s"
        " RETURNING nonce, verifier",
        (_digest(state), PENDING),
    )
    row = await cur.fetchone()
    if row is None:
        raise OidcError("unknown, used or expired sign-in: start again")
    nonce, verifier = str(row[0]), str(row[1])
    meta = await discover(http, cfg)
    form = {
        "grant_type": "authorization_code", "code": code, "redirect_uri": cfg.redirect_url,
        "client_id": cfg.client_id, "code_verifier": verifier,
    }  # fmt: skip
    if cfg.client_secret is not None:
        form["client_secret"] = cfg.client_secret.get_secret_value()
    tokens = await _json(http, "POST", meta["token_endpoint"], data=form)
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise OidcError("the provider's answer has no id_token")
    keys = await _json(http, "GET", meta["jwks_uri"])
    claims = _claims(id_token, keys, cfg, nonce)
    name = claims.get(cfg.username_claim)
    if not isinstance(name, str) or not name:
        raise OidcError(f"the id_token has no {cfg.username_claim!r} claim")
    return name


def _claims(id_token: str, keys: dict[str, Any], cfg: OidcSettings, nonce: str) -> dict[str, Any]:
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(keys))  # type: ignore[arg-type]
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": cfg.issuer},
            aud={"essential": True, "value": cfg.client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as err:
        raise OidcError(f"id_token refused: {err}") from err
    return dict(token.claims)
