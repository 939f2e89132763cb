"""Accounts (issue 17.1): password rules, argon2 hashes, TOTP with reuse refused, lock-out
after repeated failures (audited), password sign-in to the dashboard with its idle timeout,
and API tokens still working for machines."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pyotp
import pytest

from cloud.accounts import passwords
from cloud.accounts.settings import AccountSettings
from cloud.auth.model import Role
from cloud.web.session import COOKIE
from tests.support.ledger_api import Api, api
from tests.support.people import PASSWORD, code_at_step, give_password

pytestmark = pytest.mark.integration

QA = "qa-1"


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[Api]:
    settings = AccountSettings(max_failures=3, lockout=timedelta(minutes=10))
    async with api(timescale_url, accounts=settings) as a:
        yield a


async def rows(url: str, statement: str, *params: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(statement.encode(), params)
        found = await cur.fetchall() if cur.description else []
        await conn.commit()
        return found


def test_password_rules_follow_sp_800_63b() -> None:
    assert passwords.problems("short one", username="ana") == ["must have at least 12 characters"]
    assert passwords.problems("ana-the-pharmacist", username="Ana") == [
        "must not contain the user name"
    ]
    assert passwords.problems("Password1234", username="bo") == ["is a commonly used password"]
    assert passwords.problems("zzzzzzzzzzzzzzzz", username="bo") == ["is a commonly used password"]
    # no composition rules: a long lower-case passphrase with spaces is fine
    assert passwords.problems("the fridge hums in a minor key", username="bo") == []
    assert passwords.problems("x" * 300 + "yz", username="bo") == [
        "must have at most 256 characters"
    ]
    stored = passwords.hash_password("the fridge hums")
    assert stored.startswith("$argon2id$")
    assert "the fridge hums" not in stored
    assert passwords.verify_password(stored, "the fridge hums")
    assert not passwords.verify_password(stored, "the fridge hums!")
    assert not passwords.verify_password("not a hash", "the fridge hums")


async def test_admin_sets_a_password_and_the_person_signs_in(
    client: Api, timescale_url: str
) -> None:
    admin = client.as_(Role.ADMIN)
    weak = await client.client.put(
        f"/v1/users/{QA}/password", json={"password": "qa-1 password"}, headers=admin
    )
    assert weak.status_code == 422
    assert "user name" in weak.json()["detail"]
    set_ = await client.client.put(
        f"/v1/users/{QA}/password", json={"password": PASSWORD}, headers=admin
    )
    assert set_.status_code == 200, set_.text
    assert set_.json()["has_password"] is True
    [(stored,)] = await rows(timescale_url, "SELECT password_hash FROM users WHERE name = %s", QA)
    assert isinstance(stored, str)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    # only an admin may set someone's password
    other = await client.client.put(
        f"/v1/users/{QA}/password", json={"password": PASSWORD}, headers=client.as_(Role.QA)
    )
    assert other.status_code == 403

    signed = await client.client.post("/ui/login", data={"username": QA, "password": PASSWORD})
    assert signed.status_code == 303
    assert (await client.client.get("/ui")).status_code == 200
    [(owner,)] = await rows(timescale_url, "SELECT user_id IS NOT NULL FROM ui_sessions")
    assert owner is True
    audited = await rows(timescale_url, "SELECT actor, action FROM audit_log ORDER BY audit_id")
    assert (QA, "account.sign_in") in audited
    assert ("admin-1", "account.password_set") in audited

    client.client.cookies.clear()
    wrong = await client.client.post("/ui/login", data={"username": QA, "password": "nope"})
    assert wrong.status_code == 401
    assert "wrong user name, password or one-time code" in wrong.text
    nobody = await client.client.post("/ui/login", data={"username": "ghost", "password": "x"})
    assert nobody.status_code == 401
    assert "wrong user name, password or one-time code" in nobody.text  # no hint which
    # a service account without a password cannot sign in with one
    machine = await client.client.post(
        "/ui/login", data={"username": "operator-1", "password": PASSWORD}
    )
    assert machine.status_code == 403
    # and API tokens keep working for machines and scripts
    me = await client.client.get("/v1/me", headers=client.as_(Role.OPERATOR))
    assert me.status_code == 200


async def test_repeated_failures_lock_the_account_and_are_audited(
    client: Api, timescale_url: str
) -> None:
    await give_password(timescale_url, QA)
    for _ in range(2):
        r = await client.client.post("/ui/login", data={"username": QA, "password": "bad guess"})
        assert r.status_code == 401
    third = await client.client.post("/ui/login", data={"username": QA, "password": "bad"})
    assert third.status_code == 423
    assert "locked" in third.text
    # locked: even the right password is refused until the lock ends or an admin unlocks
    right = await client.client.post("/ui/login", data={"username": QA, "password": PASSWORD})
    assert right.status_code == 423
    [(until,)] = await rows(
        timescale_url,
        "SELECT locked_until - now() > interval '9 minutes' FROM users WHERE name = %s",
        QA,
    )
    assert until is True
    actions = [
        a for (a,) in await rows(
            timescale_url, "SELECT action FROM audit_log WHERE subject = %s ORDER BY audit_id",
            f"user:{QA}",
        )
    ]  # fmt: skip
    assert actions == [
        "account.auth_failed", "account.auth_failed", "account.locked",
        "account.auth_refused_locked",
    ]  # fmt: skip
    state = await client.client.get(f"/v1/users/{QA}/account", headers=client.as_(Role.ADMIN))
    assert state.json()["locked_until"] is not None
    unlocked = await client.client.post(f"/v1/users/{QA}/unlock", headers=client.as_(Role.ADMIN))
    assert unlocked.json()["locked_until"] is None
    ok = await client.client.post("/ui/login", data={"username": QA, "password": PASSWORD})
    assert ok.status_code == 303


async def test_totp_enrolment_then_codes_are_needed_and_used_once(
    client: Api, timescale_url: str
) -> None:
    await give_password(timescale_url, QA)
    me = client.as_(Role.QA)
    refused = await client.client.post("/v1/me/totp", json={"password": "wrong"}, headers=me)
    assert refused.status_code == 401
    started = await client.client.post("/v1/me/totp", json={"password": PASSWORD}, headers=me)
    assert started.status_code == 201, started.text
    uri = started.json()["provisioning_uri"]
    assert uri.startswith("otpauth://totp/coldtrace:qa-1?")
    secret = pyotp.parse_uri(uri).secret
    # not yet confirmed: the password alone still signs in
    assert (await client.client.get("/v1/me/account", headers=me)).json()["totp_enrolled"] is False
    bad = await client.client.post("/v1/me/totp/confirm", json={"code": "000000"}, headers=me)
    assert bad.status_code == 422
    code = code_at_step(secret)
    good = await client.client.post("/v1/me/totp/confirm", json={"code": code}, headers=me)
    assert good.status_code == 200, good.text
    assert good.json()["totp_enrolled"] is True
    [(pending,)] = await rows(timescale_url, "SELECT totp_pending FROM users WHERE name=%s", QA)
    assert pending is None

    form = {"username": QA, "password": PASSWORD}
    without = await client.client.post("/ui/login", data=form)
    assert without.status_code == 401
    # the code used for confirming cannot be used again
    again = await client.client.post("/ui/login", data={**form, "code": code})
    assert again.status_code == 401
    nxt = code_at_step(secret, 1)
    assert (await client.client.post("/ui/login", data={**form, "code": nxt})).status_code == 303
    client.client.cookies.clear()
    replay = await client.client.post("/ui/login", data={**form, "code": nxt})
    assert replay.status_code == 401
    far = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(minutes=5))  # outside the window
    assert (await client.client.post("/ui/login", data={**form, "code": far})).status_code == 401

    # an administrator removes a lost factor
    await client.client.post(f"/v1/users/{QA}/unlock", headers=client.as_(Role.ADMIN))
    removed = await client.client.delete(f"/v1/users/{QA}/totp", headers=client.as_(Role.ADMIN))
    assert removed.json()["totp_enrolled"] is False
    assert (await client.client.post("/ui/login", data=form)).status_code == 303


async def test_password_session_ends_when_idle_or_when_the_password_changes(
    client: Api, timescale_url: str
) -> None:
    await give_password(timescale_url, QA)
    form = {"username": QA, "password": PASSWORD}
    assert (await client.client.post("/ui/login", data=form)).status_code == 303
    session = client.client.cookies[COOKIE]
    await rows(timescale_url, "UPDATE ui_sessions SET last_seen_at = now() - interval '31 min'")
    assert (await client.client.get("/ui")).headers["location"] == "/ui/login"

    assert (await client.client.post("/ui/login", data=form)).status_code == 303
    assert (await client.client.get("/ui")).status_code == 200
    changed = await client.client.put(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a newer longer phrase"},
        headers=client.as_(Role.QA),
    )
    assert changed.status_code == 200, changed.text
    assert (await client.client.get("/ui")).headers["location"] == "/ui/login"
    client.client.cookies.set(COOKIE, session)
    assert (await client.client.get("/ui/events")).status_code == 401
    # a disabled user's password session ends too
    again = {"username": QA, "password": "a newer longer phrase"}
    assert (await client.client.post("/ui/login", data=again)).status_code == 303
    await client.client.post(f"/v1/users/{QA}/disable", headers=client.as_(Role.ADMIN))
    assert (await client.client.get("/ui")).headers["location"] == "/ui/login"


async def test_dashboard_account_page_enrols_totp_and_changes_the_password(
    client: Api, timescale_url: str
) -> None:
    await give_password(timescale_url, QA, full_name="Quinn Quality")
    form = {"username": QA, "password": PASSWORD}
    assert (await client.client.post("/ui/login", data=form)).status_code == 303
    page = await client.client.get("/ui/account")
    assert page.status_code == 200
    assert "Quinn Quality" in page.text
    assert "second factor: not enrolled" in page.text
    wrong = await client.client.post("/ui/account/totp", data={"password": "nope"})
    assert wrong.status_code == 400
    started = await client.client.post("/ui/account/totp", data={"password": PASSWORD})
    assert started.status_code == 200
    assert started.headers["cache-control"] == "no-store"
    [uri] = re.findall(r"otpauth://[^<]+", started.text)
    secret = pyotp.parse_uri(html.unescape(uri)).secret
    confirmed = await client.client.post(
        "/ui/account/totp/confirm", data={"code": code_at_step(secret)}
    )
    assert "second factor: enrolled" in confirmed.text

    new = "a quiet cold room at night"
    code = code_at_step(secret, 1)
    changed = await client.client.post(
        "/ui/account/password", data={"current": PASSWORD, "new": new, "code": code}
    )
    assert changed.status_code == 303  # signed out: the password's sessions ended
    assert (await client.client.get("/ui")).headers["location"] == "/ui/login"
    again = {"username": QA, "password": new, "code": code}
    assert (await client.client.post("/ui/login", data=again)).status_code == 401  # code reused
    # a machine account's page says it has no password
    client.client.cookies.clear()
    await client.client.post("/ui/login", data={"token": client.tokens[Role.OPERATOR]})
    assert "has no password" in (await client.client.get("/ui/account")).text


async def test_control_characters_in_names_are_refused_cleanly(client: Api) -> None:
    nul = await client.client.post("/ui/login", data={"username": "qa\x00-1", "password": "x"})
    assert nul.status_code == 401
    signatures = await client.client.get(
        "/v1/signatures", params={"subject": "lot:\x00"}, headers=client.as_(Role.VIEWER)
    )
    assert signatures.status_code == 422
