"""Sessions and accounts: the dashboard cookie is a revocable server-side session, not the API
token; idle and absolute timeouts; Secure behind a TLS proxy only when told to trust it;
security headers; expiring API tokens; QA acknowledges alerts over REST; gateway administration
is audited and a gateway can be disabled."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import psycopg
import pytest

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.web.session import COOKIE
from tests.support.cloud_ingest import Gateway, app_client, batch_of, post
from tests.support.ledger_api import Api, api

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        yield a


async def sign_in(client: httpx.AsyncClient, token: str, **headers: str) -> httpx.Response:
    client.cookies.clear()
    return await client.post("/ui/login", data={"token": token}, headers=headers)


async def sql(url: str, statement: str, *params: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(statement.encode(), params)
        rows = await cur.fetchall() if cur.description else []
        await conn.commit()
        return rows


async def test_the_cookie_is_a_session_that_sign_out_revokes(
    client: Api, timescale_url: str
) -> None:
    token = client.tokens[Role.VIEWER]
    login = await sign_in(client.client, token)
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    session_id = client.client.cookies[COOKIE]
    assert token not in cookie
    assert session_id != token
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP, no trusted proxy
    [(stored,)] = await sql(timescale_url, "SELECT session_hash FROM ui_sessions")
    assert isinstance(stored, bytes)
    assert stored == hashlib.sha256(session_id.encode()).digest()  # only the hash is kept
    assert (await client.client.get("/ui")).status_code == 200

    await sql(
        timescale_url,
        "INSERT INTO ui_sessions (session_hash, token_id, created_at, expires_at)"
        " SELECT '\\x00', token_id, now() - interval '3 days', now() - interval '2 days'"
        " FROM api_tokens LIMIT 1",
    )
    await sign_in(client.client, token)  # a sign-in clears sessions long ended
    [(count,)] = await sql(timescale_url, "SELECT count(*) FROM ui_sessions")
    assert count == 2
    session_id = client.client.cookies[COOKIE]
    out = await client.client.post("/ui/logout")
    assert out.status_code == 303
    client.client.cookies.set(COOKIE, session_id)  # a copy of the cookie kept by an attacker
    assert (await client.client.get("/ui")).headers["location"] == "/ui/login"
    assert (await client.client.get("/ui/events")).status_code == 401
    assert (await client.client.get("/v1/me", headers={"Cookie": f"{COOKIE}={session_id}"})
            ).status_code == 401  # fmt: skip  # a session id is no API token


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("UPDATE ui_sessions SET last_seen_at = now() - interval '31 minutes'", "idle"),
        (
            "UPDATE ui_sessions SET created_at = now() - interval '13 hours',"
            " expires_at = now() - interval '1 hour'",
            "lifetime",
        ),
        ("UPDATE api_tokens SET revoked_at = now()", "token revoked"),
        ("UPDATE api_tokens SET expires_at = now() - interval '1 second'", "token expired"),
        ("UPDATE users SET disabled_at = now()", "user disabled"),
    ],
)
async def test_a_session_ends_with_idleness_age_or_its_token_and_user(
    client: Api, timescale_url: str, change: str, why: str
) -> None:
    await sign_in(client.client, client.tokens[Role.QA])
    assert (await client.client.get("/ui")).status_code == 200, why
    await sql(timescale_url, change)
    page = await client.client.get("/ui")
    assert page.status_code == 303, why
    assert page.headers["location"] == "/ui/login"


async def test_pages_count_as_activity_and_the_event_stream_does_not(
    timescale_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLDTRACE_WEB_STREAM_LIFETIME", "PT0.2S")
    monkeypatch.setenv("COLDTRACE_WEB_POLL_INTERVAL", "PT0.05S")
    async with api(timescale_url) as client:
        await sign_in(client.client, client.tokens[Role.VIEWER])
        back = "UPDATE ui_sessions SET last_seen_at = now() - interval '10 minutes'"
        await sql(timescale_url, back)
        assert (await client.client.get("/ui/events")).status_code == 200
        [(idle,)] = await sql(timescale_url, "SELECT now() - last_seen_at FROM ui_sessions")
        assert isinstance(idle, timedelta)
        assert idle >= timedelta(minutes=9)
        assert (await client.client.get("/ui")).status_code == 200
        [(idle,)] = await sql(timescale_url, "SELECT now() - last_seen_at FROM ui_sessions")
        assert isinstance(idle, timedelta)
        assert idle < timedelta(minutes=1)


async def test_secure_cookie_behind_a_tls_proxy_only_when_trusted(
    timescale_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        token = await add_user(conn, "wall", Role.VIEWER)
        await conn.commit()
    proxy = {"X-Forwarded-Proto": "https"}
    async with app_client(timescale_url) as client:
        untrusted = await sign_in(client, token, **proxy)
        assert "Secure" not in untrusted.headers["set-cookie"]
    monkeypatch.setenv("COLDTRACE_WEB_TRUST_FORWARDED_PROTO", "true")
    async with app_client(timescale_url) as client:
        trusted = await sign_in(client, token, **proxy)
        assert "Secure" in trusted.headers["set-cookie"]
        plain = await sign_in(client, token, **{"X-Forwarded-Proto": "http"})
        assert "Secure" not in plain.headers["set-cookie"]


async def test_dashboard_and_api_carry_security_headers(client: Api) -> None:
    for path in ("/ui/login", "/ui", "/ui/static/app.js", "/ui/no-such-page"):
        response = await client.client.get(path)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    api_answer = await client.client.get("/v1/me")
    assert api_answer.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api_answer.headers


async def test_api_tokens_can_expire(client: Api, timescale_url: str) -> None:
    admin = client.as_(Role.ADMIN)
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await client.client.post(
        "/v1/users", json={"name": "temp-1", "role": "viewer", "token_expires_at": soon},
        headers=admin,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    bearer = {"Authorization": f"Bearer {created.json()['token']}"}
    assert (await client.client.get("/v1/me", headers=bearer)).status_code == 200
    await sql(timescale_url, "UPDATE api_tokens SET expires_at = now() - interval '1 second'"
              " WHERE user_id = (SELECT user_id FROM users WHERE name = 'temp-1')")  # fmt: skip
    expired = await client.client.get("/v1/me", headers=bearer)
    assert expired.status_code == 401
    assert "expired" in expired.text
    fresh = await client.client.post(
        "/v1/users/temp-1/tokens", json={"expires_at": soon}, headers=admin
    )
    assert fresh.status_code == 201
    assert fresh.json()["expires_at"] is not None
    again = {"Authorization": f"Bearer {fresh.json()['token']}"}
    assert (await client.client.get("/v1/me", headers=again)).status_code == 200
    past = await client.client.post(
        "/v1/users/temp-1/tokens", json={"expires_at": "2020-01-01T00:00:00Z"}, headers=admin
    )
    assert past.status_code == 422
    trail = await client.client.get("/v1/audit", params={"subject": "user:temp-1"}, headers=admin)
    assert [e["action"] for e in trail.json()] == ["token.issue", "user.add"]


async def test_qa_acknowledges_alerts_through_the_api(client: Api, timescale_url: str) -> None:
    rows = await sql(
        timescale_url,
        "INSERT INTO alerts (at, kind, severity, message, dedup_key) VALUES"
        " (now(), 'no_data', 'warning', 'probe silent', 'k1'),"
        " (now(), 'no_data', 'warning', 'probe silent', 'k2') RETURNING alert_id",
    )
    first, second = (int(str(r[0])) for r in rows)
    viewer = await client.client.post(
        f"/v1/alerts/{first}/acknowledge", json={}, headers=client.as_(Role.VIEWER)
    )
    assert viewer.status_code == 403
    for role, alert in ((Role.QA, first), (Role.OPERATOR, second)):
        done = await client.client.post(
            f"/v1/alerts/{alert}/acknowledge", json={"note": "seen"}, headers=client.as_(role)
        )
        assert done.status_code == 200, (role, done.text)
        assert done.json()["acknowledged_by"] == f"{role.value}-1"


def coldtrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldtrace", *args], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


async def test_gateway_administration_is_audited_and_disable_refuses_the_token(
    timescale_url: str,
) -> None:
    url = timescale_url
    add = coldtrace("cloud", "gateway", "add", "gw-a", "--reason", "dock 3", "--database-url", url)
    assert add.returncode == 0, add.stderr
    first = add.stdout.strip().splitlines()[-1]
    rotate = coldtrace("cloud", "gateway", "rotate", "gw-a", "--database-url", url)
    assert rotate.returncode == 0, rotate.stderr
    token = rotate.stdout.strip().splitlines()[-1]
    assert token != first
    async with api(url) as client:
        boot = uuid4()
        old = await post(client.client, Gateway("gw-a", first), batch_of("gw-a", boot, 1, 1))
        assert old.status_code == 401
        ok = await post(client.client, Gateway("gw-a", token), batch_of("gw-a", boot, 1, 1))
        assert ok.status_code == 200, ok.text
        disable = coldtrace("cloud", "gateway", "disable", "gw-a", "--reason", "stolen",
                            "--database-url", url)  # fmt: skip
        assert disable.returncode == 0, disable.stderr
        refused = await post(client.client, Gateway("gw-a", token), batch_of("gw-a", boot, 2, 1))
        assert refused.status_code == 401
        assert "disabled" in refused.text
    again = coldtrace("cloud", "gateway", "disable", "gw-a", "--database-url", url)
    assert again.returncode == 1
    trail = await sql(url, "SELECT actor, action, reason FROM audit_log"
                      " WHERE subject = 'gateway:gw-a' ORDER BY audit_id")  # fmt: skip
    assert [row[1] for row in trail] == ["gateway.add", "gateway.rotate", "gateway.disable"]
    assert all(str(row[0]).startswith("cli:") for row in trail)
    assert [row[2] for row in trail] == ["dock 3", "token rotated", "stolen"]


async def test_add_user_keeps_tokens_without_expiry_working(timescale_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        token = await add_user(conn, "lasting", Role.VIEWER)
        await conn.commit()
    async with app_client(timescale_url) as client:
        me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200


async def test_signing_in_again_ends_the_session_the_browser_had(client: Api) -> None:
    """Each sign-in gets a new session id, and the id the browser sent with it stops working
    (another person signing in at a shared workstation leaves nothing of the first behind)."""
    first = await sign_in(client.client, client.tokens[Role.VIEWER])
    assert first.status_code == 303
    old = client.client.cookies[COOKIE]
    again = await client.client.post("/ui/login", data={"token": client.tokens[Role.QA]})
    assert again.status_code == 303
    assert client.client.cookies[COOKIE] != old
    assert (await client.client.get("/ui")).status_code == 200
    client.client.cookies.clear()
    client.client.cookies.set(COOKIE, old)  # a copy of the first cookie
    assert (await client.client.get("/ui")).headers["location"] == "/ui/login"
