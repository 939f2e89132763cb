"""``coldtrace users password|full-name|unlock`` (issue 17.1): a password from stdin (never an
argument), rules applied, audited; the printed name; unlocking."""

from __future__ import annotations

import asyncio
import io

import psycopg
import pytest

from cloud.accounts.settings import AccountSettings
from cloud.accounts.store import verify_person
from coldtrace.cli import main

pytestmark = pytest.mark.integration


def test_password_name_and_unlock_from_the_command_line(
    timescale_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ["--database-url", timescale_url]
    assert main(["users", "add", "nora", "--role", "qa", *db]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("nora1234567890\n"))
    assert main(["users", "password", "nora", "--stdin", *db]) == 1
    assert "must not contain the user name" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("cold boxes stacked high\n"))
    assert main(["users", "password", "nora", "--stdin", *db]) == 0
    assert main(["users", "full-name", "nora", "Nora Nilsen", *db]) == 0
    assert main(["users", "unlock", "ghost", *db]) == 1

    async def check() -> tuple[str, list[tuple[str, str]]]:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            person = await verify_person(
                conn, "nora", "cold boxes stacked high", None, AccountSettings(), purpose="test"
            )
            cur = await conn.execute(
                "SELECT actor, action FROM audit_log WHERE subject = 'user:nora'"
                " AND action LIKE 'account.%%' ORDER BY audit_id"
            )
            return person.printed_name, [(str(a), str(b)) for a, b in await cur.fetchall()]

    printed, audited = asyncio.run(check())
    assert printed == "Nora Nilsen"
    assert audited == [("cli", "account.password_set"), ("cli", "account.full_name")]
    assert main(["users", "unlock", "nora", *db]) == 0
