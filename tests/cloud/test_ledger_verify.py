"""``coldtrace ledger verify`` and ``coldtrace users add`` as a user runs them."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest

from cloud.auth.service import authenticate
from cloud.ledger.chain import ENTRY_COLUMNS, draft_from_row
from cloud.ledger.core import GENESIS, Draft, Movement, Place, Status, entry_hash, replay
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


def _forge(url: str) -> None:
    """Rewrites entry 2 and every hash after it, the balances and the head: a consistent forgery
    that a hash chain alone cannot show (whoever can write the database can recompute it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT {ENTRY_COLUMNS} FROM ledger_entries ORDER BY entry_id"
        ).fetchall()
        conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER USER")
        prev = GENESIS
        drafts = []
        for row in rows:
            draft = draft_from_row(row)
            if row[0] == 2:
                draft = replace(draft, quantity=5)
            digest = entry_hash(draft, recorded_at=row[1], prev_hash=prev)
            conn.execute(
                "UPDATE ledger_entries SET quantity = %s, prev_hash = %s, entry_hash = %s"
                " WHERE entry_id = %s",
                (draft.quantity, prev, digest, row[0]),
            )
            drafts.append(draft)
            prev = digest
        for trigger in ("ledger_entries_no_update", "ledger_entries_no_truncate"):
            conn.execute(f"ALTER TABLE ledger_entries ENABLE ALWAYS TRIGGER {trigger}")
        conn.execute("UPDATE ledger_head SET last_hash = %s", (prev,))
        conn.execute("DELETE FROM balances")
        for key, qty in replay(drafts).items():
            conn.execute(
                "INSERT INTO balances (lot_id, location_id, status, quantity)"
                " VALUES (%s, %s, %s, %s)",
                (key.lot_id, key.location_id, key.status.value, qty),
            )


def test_an_anchor_kept_elsewhere_exposes_a_consistent_rewrite(
    timescale_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_ledger(timescale_url))
    assert main(["ledger", "head", "--database-url", timescale_url]) == 0
    anchor = capsys.readouterr().out.strip()
    assert anchor.startswith("3:")
    assert len(anchor) == 2 + 64
    _forge(timescale_url)
    assert main(["ledger", "verify", "--database-url", timescale_url]) == 0  # undetectable alone
    capsys.readouterr()
    url_and_anchor = ["--database-url", timescale_url, "--anchor", anchor]
    assert main(["ledger", "verify", *url_and_anchor]) == 3
    assert "entry 3: hash differs from the anchor recorded earlier" in capsys.readouterr().out
    assert main(["ledger", "verify", "--database-url", timescale_url, "--anchor", "9:00"]) == 3
    assert "entry 9: anchored earlier but no longer in the ledger" in capsys.readouterr().out
