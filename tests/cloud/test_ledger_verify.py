"""``coldtrace ledger verify`` and ``coldtrace users add`` as a user runs them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from cloud.auth.service import authenticate
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from coldtrace.cli import main
from tests.support.ledger_seed import DOCK, FRIDGE, GTIN_A, seed

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
AVAIL = Status.AVAILABLE


async def _ledger(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await seed(conn)
        lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="V1", expiry=None)
        dock, fridge = Place(DOCK, AVAIL), Place(FRIDGE, AVAIL)
        await post(
            conn,
            [
                Draft(Movement.RECEIVE, lot, 10, T0, "dock", to=dock),
                Draft(Movement.PUT_AWAY, lot, 6, T0, "op", frm=dock, to=fridge),
                Draft(Movement.MOVE, lot, 2, T0, "op", frm=fridge, to=dock),
            ],
        )
        await conn.commit()


def _tamper(url: str, statement: str) -> None:
    # what an attacker with superuser rights could do: switch the guard off, edit, switch it on
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER USER")
        conn.execute(statement)
        conn.execute("ALTER TABLE ledger_entries ENABLE TRIGGER USER")


def test_verify_passes_then_finds_the_first_tampered_entry(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_ledger(database_url))
    assert main(["ledger", "verify", "--database-url", database_url]) == 0
    assert "ledger intact" in capsys.readouterr().out

    _tamper(database_url, "UPDATE ledger_entries SET quantity = 5 WHERE entry_id = 2")
    assert main(["ledger", "verify", "--database-url", database_url]) == 3
    out = capsys.readouterr().out
    assert "first bad entry 2: entry 2: stored hash does not match its content" in out
    assert "BALANCE MISMATCH" in out


def test_verify_notices_a_removed_last_entry(
    timescale_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_ledger(timescale_url))
    _tamper(timescale_url, "DELETE FROM ledger_entries WHERE entry_id = 3")
    assert main(["ledger", "verify", "--database-url", timescale_url]) == 3
    out = capsys.readouterr().out
    assert "chain head does not match" in out


def test_verify_without_a_database_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"
    assert main(["ledger", "verify", "--database-url", url]) == 2
    assert "cannot read the ledger" in capsys.readouterr().err


def test_users_add_prints_a_token_once_that_authenticates(
    timescale_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "add", "qa-anna", "--role", "qa", "--database-url", timescale_url]) == 0
    captured = capsys.readouterr()
    token = captured.out.strip()
    assert "shown once" in captured.err

    async def who() -> tuple[str, str]:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            user = await authenticate(conn, token)
            return user.name, user.role.value

    assert asyncio.run(who()) == ("qa-anna", "qa")
    assert main(["users", "add", "qa-anna", "--role", "qa", "--database-url", timescale_url]) == 1
    assert "already exists" in capsys.readouterr().err
