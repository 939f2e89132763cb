"""Roles and tokens through the HTTP API: 401 without a valid token, 403 for the wrong role."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from cloud.auth.model import Role, User, hash_token, new_token
from tests.support.ledger_api import Api, api

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        yield a


def test_roles_and_tokens_are_pure_values() -> None:
    assert User("a", Role.ADMIN).allows(Role.QA, Role.OPERATOR)
    assert User("q", Role.QA).allows(Role.QA)
    assert not User("q", Role.QA).allows(Role.OPERATOR)
    first, second = new_token(), new_token()
    assert first != second
    assert first.startswith("ct_")
    assert len(hash_token(first)) == 32


async def test_no_token_or_a_bad_one_is_401(client: Api) -> None:
    response = await client.client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    response = await client.client.get("/v1/me", headers={"Authorization": "Bearer ct_nope"})
    assert response.status_code == 401


async def test_roles_gate_the_writes(client: Api) -> None:
    me = await client.client.get("/v1/me", headers=client.as_(Role.QA))
    assert me.json() == {"name": "qa-1", "role": "qa", "enabled": True}
    body = {"name": "new-op", "role": "operator"}
    for role in (Role.VIEWER, Role.OPERATOR, Role.QA):
        response = await client.client.post("/v1/users", json=body, headers=client.as_(role))
        assert response.status_code == 403, role
    created = await client.client.post(
        "/v1/users",
        json=body,
        headers=client.as_(Role.ADMIN) | {"X-Coldtrace-Reason": "night shift"},
    )
    assert created.status_code == 201
    token = created.json()["token"]
    who = await client.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert who.json()["role"] == "operator"
    again = await client.client.post("/v1/users", json=body, headers=client.as_(Role.ADMIN))
    assert again.status_code == 409
    viewer_write = await client.client.post(
        "/v1/recalls/lot/00614141123452/L1",
        json={"reason": "x", "reference": "r"},
        headers=client.as_(Role.VIEWER),
    )
    assert viewer_write.status_code == 403


async def test_disabled_users_lose_access_and_writes_are_audited(
    client: Api, timescale_url: str
) -> None:
    disabled = await client.client.post(
        "/v1/users/viewer-1/disable",
        headers=client.as_(Role.ADMIN) | {"X-Coldtrace-Reason": "left the company"},
    )
    assert disabled.json() == {"name": "viewer-1", "role": "viewer", "enabled": False}
    response = await client.client.get("/v1/me", headers=client.as_(Role.VIEWER))
    assert response.status_code == 401
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute("SELECT actor, action, subject, reason FROM audit_log")
        assert await cur.fetchall() == [
            ("admin-1", "user.disable", "user:viewer-1", "left the company")
        ]
        cur = await conn.execute("SELECT count(*) FROM api_tokens WHERE length(token_hash) = 32")
        assert await cur.fetchone() == (4,)
    trail = await client.client.get(
        "/v1/audit", params={"subject": "user:viewer-1"}, headers=client.as_(Role.ADMIN)
    )
    assert [(a["actor"], a["action"], a["reason"]) for a in trail.json()] == [
        ("admin-1", "user.disable", "left the company")
    ]
    # QA reviews the trail (Annex 11 §9); operators and viewers do not read it
    assert (await client.client.get("/v1/audit", headers=client.as_(Role.QA))).status_code == 200
    hidden = await client.client.get("/v1/audit", headers=client.as_(Role.OPERATOR))
    assert hidden.status_code == 403
