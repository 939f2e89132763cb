"""E-signature rules over the API (issue 17.2): a machine account cannot sign, the signer must
be the requester, the meaning must fit, an enrolled signer gives a fresh code, failed
re-authentication counts towards lock-out, and the stored signature verifies against the
ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pyotp
import pytest

from cloud.accounts.settings import AccountSettings
from cloud.auth.model import Role
from cloud.ledger.service import ensure_lot, quarantine_at_location
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import FRIDGE, GTIN_A
from tests.support.people import PASSWORD, code_at_step, give_password, signature

pytestmark = pytest.mark.integration

QA = "qa-1"


@pytest.fixture
async def quarantined(timescale_url: str) -> AsyncIterator[tuple[Api, int]]:
    """A lot with 5 units quarantined in the fridge; qa-1 has a password; 3 failures lock."""
    settings = AccountSettings(max_failures=3, lockout=timedelta(minutes=5))
    async with api(timescale_url, accounts=settings) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="SIG1", expiry=None)
            await conn.commit()
        booked = await a.client.post(
            "/v1/ledger/movements",
            json={"movement": "receive", "lot_id": lot, "quantity": 5, "reason": "in",
                  "to_location": FRIDGE, "to_status": "available"},
            headers=a.as_(Role.OPERATOR),
        )  # fmt: skip
        assert booked.status_code == 201
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await quarantine_at_location(
                conn, location_id=FRIDGE, effective_at=datetime.now(UTC), actor="rules",
                reason="hot", reference="ex-1",
            )  # fmt: skip
            await conn.commit()
        await give_password(timescale_url, QA, full_name="Quinn Quality")
        yield a, lot


def release(sig: dict[str, str | None]) -> dict[str, object]:
    return {"decision": "release", "reason": "data reviewed", "signature": sig}


async def test_who_may_sign_and_with_what(quarantined: tuple[Api, int], timescale_url: str) -> None:
    a, lot = quarantined
    url = f"/v1/lots/{lot}/disposition"
    qa = a.as_(Role.QA)
    # an admin's machine token (no password) cannot sign, whatever its role
    machine = await a.client.post(
        url, json=release(signature("admin-1", "released")), headers=a.as_(Role.ADMIN)
    )
    assert machine.status_code == 403
    assert "machines" in machine.text
    # qa-1's token with admin-1's name: the signer must be the requester
    other = await a.client.post(url, json=release(signature("admin-1", "released")), headers=qa)
    assert other.status_code == 403
    # a release is not signed as "rejected"
    wrong_meaning = await a.client.post(url, json=release(signature(QA, "rejected")), headers=qa)
    assert wrong_meaning.status_code == 422
    # nothing was written by the refusals
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM e_signatures")
        assert await cur.fetchone() == (0,)

    # once enrolled, a signature needs a fresh code too
    secret = pyotp.random_base32()
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await conn.execute("UPDATE users SET totp_secret = %s WHERE name = %s", (secret, QA))
        await conn.commit()
    no_code = await a.client.post(url, json=release(signature(QA, "released")), headers=qa)
    assert no_code.status_code == 401
    code = code_at_step(secret)
    signed = await a.client.post(
        url, json=release(signature(QA, "approved", code=code)), headers=qa
    )
    assert signed.status_code == 200, signed.text
    sig = signed.json()["signature"]
    assert (sig["username"], sig["printed_name"], sig["meaning"], sig["factors"]) == (
        QA, "Quinn Quality", "approved", "password+totp",
    )  # fmt: skip
    assert sig["subject"] == f"lot:{lot}"
    assert len(sig["entry_ids"]) == 1
    assert sig["manifestation"].startswith("Quinn Quality (qa-1), ")
    entries = (await a.client.get(f"/v1/ledger/entries?lot_id={lot}", headers=qa)).json()
    [released] = [e for e in entries if e["movement"] == "release"]
    assert released["signature_ids"] == [sig["signature_id"]]
    assert released["signature_meaning"] == "approved"
    listed = await a.client.get(f"/v1/signatures?subject=lot:{lot}", headers=qa)
    assert [s["signature_id"] for s in listed.json()] == [sig["signature_id"]]
    checked = await a.client.get(f"/v1/signatures/{sig['signature_id']}/verify", headers=qa)
    assert checked.json() == {"signature_id": sig["signature_id"], "intact": True}


async def test_failed_signatures_lock_the_account(
    quarantined: tuple[Api, int], timescale_url: str
) -> None:
    a, lot = quarantined
    url = f"/v1/lots/{lot}/disposition"
    bad = signature(QA, "released") | {"password": "not the password"}
    for expected in (401, 401, 423):
        answer = await a.client.post(url, json=release(bad), headers=a.as_(Role.QA))
        assert answer.status_code == expected
    # locked: the right password is refused too, and the dashboard sign-in as well
    right = await a.client.post(url, json=release(signature(QA, "released")),
                                headers=a.as_(Role.QA))  # fmt: skip
    assert right.status_code == 423
    ui = await a.client.post("/ui/login", data={"username": QA, "password": PASSWORD})
    assert ui.status_code == 423
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute(
            "SELECT action, reason FROM audit_log WHERE subject = %s ORDER BY audit_id",
            (f"user:{QA}",),
        )
        rows = await cur.fetchall()
    assert rows[:3] == [
        ("account.auth_failed", "signature: lot.disposition"),
        ("account.auth_failed", "signature: lot.disposition"),
        ("account.locked", "signature: lot.disposition"),
    ]
    # the lot is still in quarantine: nothing was released
    balances = await a.client.get(f"/v1/ledger/balances?lot_id={lot}", headers=a.as_(Role.QA))
    assert [b["status"] for b in balances.json()] == ["quarantined"]
