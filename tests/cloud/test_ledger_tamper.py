"""Tampering by a database superuser is detected (issue 12.5), each with the right exit code.

The ledger here is written as the service writes it: entries signed with an Ed25519 key the
database never sees. The attacker has superuser SQL and this project's source, so can recompute
every hash, but not the signature.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.ledger import signing
from cloud.ledger.anchoring import Anchor, AnchorSettings, export, read_anchor
from cloud.ledger.core import Draft, Movement, Place, Status, entry_hash
from cloud.ledger.service import NewUnit, ensure_lot, post, quarantine_at_location, register_units
from cloud.ledger.signing import LedgerSigner
from coldtrace.cli import main
from tests.support.ledger_seed import DOCK, FRIDGE, GTIN_A, seed

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
EPC = "urn:epc:id:sgtin:0614141.112345.77"


@dataclass
class Ledger:
    url: str
    lot: int
    signer: LedgerSigner
    public_key: Path

    def verify(self, *extra: str) -> int:
        args = ["ledger", "verify", "--database-url", self.url, "--public-key"]
        return main([*args, str(self.public_key), *extra])


async def _write(url: str, signer: LedgerSigner) -> int:
    """Stock received into a fridge (one serialized unit among it), then a quarantine there."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        with signing.bound(signer):
            await seed(conn)
            lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="T1", expiry=None)
            await register_units(conn, [NewUnit(EPC, "sgtin", lot, None)])
            dock, fridge = Place(DOCK, Status.AVAILABLE), Place(FRIDGE, Status.AVAILABLE)
            await post(conn, [
                Draft(Movement.RECEIVE, lot, 9, T0, "dock", to=dock),
                Draft(Movement.RECEIVE, lot, 1, T0, "dock", to=dock, epc_uri=EPC),
                Draft(Movement.PUT_AWAY, lot, 10, T0, "op", frm=dock, to=fridge),
            ])  # fmt: skip
            await quarantine_at_location(
                conn, location_id=FRIDGE, effective_at=T0 + timedelta(hours=1), actor="coldchain",
                reason="excursion", reference="excursion:1",
            )  # fmt: skip
        await conn.commit()
    return lot


@pytest.fixture
def ledger(timescale_url: str, tmp_path: Path) -> Ledger:
    signer = LedgerSigner.generate()
    public = tmp_path / "ledger.pub"
    public.write_bytes(signer.public_pem())
    return Ledger(timescale_url, asyncio.run(_write(timescale_url, signer)), signer, public)


def superuser(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def forge_release(ledger: Ledger, signature: Callable[[bytes], tuple[str, bytes]] | None) -> int:
    """Appends a QA release of the quarantined lot, re-hashed, with balances, units, lot status
    and head made to agree: everything a superuser with this source can make consistent."""
    with psycopg.connect(ledger.url, autocommit=True) as conn:
        prev, = conn.execute("SELECT last_hash FROM ledger_head").fetchone() or (b"",)  # fmt: skip
        now = datetime.now(UTC)
        draft = Draft(
            Movement.RELEASE, ledger.lot, 10, now, "qa-mallory",
            frm=Place(FRIDGE, Status.QUARANTINED), to=Place(FRIDGE, Status.RELEASED),
            reason="looks fine", signature_meaning="approved for use",
        )  # fmt: skip
        digest = entry_hash(draft, recorded_at=now, prev_hash=bytes(prev))
        kid, sig = signature(digest) if signature is not None else (None, None)
        row = conn.execute(
            "INSERT INTO ledger_entries (recorded_at, effective_at, movement, lot_id, quantity,"
            " from_location, from_status, to_location, to_status, actor, reason,"
            " signature_meaning, prev_hash, entry_hash, signing_key_id, signature)"
            " VALUES (%s, %s, 'release', %s, 10, %s, 'quarantined', %s, 'released', 'qa-mallory',"
            " 'looks fine', 'approved for use', %s, %s, %s, %s) RETURNING entry_id",
            (now, now, ledger.lot, FRIDGE, FRIDGE, bytes(prev), digest, kid, sig),
        ).fetchone()
        assert row is not None
        conn.execute("UPDATE ledger_head SET last_hash = %s, last_entry_id = %s", (digest, row[0]))
        conn.execute(
            "UPDATE balances SET quantity = 0 WHERE lot_id = %s AND status = 'quarantined'",
            (ledger.lot,),
        )
        conn.execute(
            "INSERT INTO balances (lot_id, location_id, status, quantity)"
            " VALUES (%s, %s, 'released', 10)",
            (ledger.lot, FRIDGE),
        )
        conn.execute("UPDATE units SET status = 'released' WHERE lot_id = %s", (ledger.lot,))
        conn.execute("UPDATE lots SET status = 'released' WHERE lot_id = %s", (ledger.lot,))
        return int(row[0])


def test_an_untouched_signed_ledger_verifies(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ledger.verify() == 0
    out = capsys.readouterr().out
    assert "signatures: 4 signed entries checked" in out
    assert "ledger intact" in out


@pytest.mark.parametrize(
    ("forger", "message"),
    [
        ("unsigned", "not signed, though entries before it are"),
        ("own key", "which is not a trusted key"),
        ("service key id", "signature does not verify"),
    ],
)
def test_a_forged_release_rehashed_by_a_superuser_is_caught(
    ledger: Ledger, capsys: pytest.CaptureFixture[str], forger: str, message: str
) -> None:
    mallory = LedgerSigner(Ed25519PrivateKey.generate())

    def signature(digest: bytes) -> tuple[str, bytes]:
        if forger == "own key":
            return mallory.key_id, mallory.sign_entry(digest)
        return ledger.signer.key_id, mallory.sign_entry(digest)

    forged = forge_release(ledger, None if forger == "unsigned" else signature)
    capsys.readouterr()
    assert ledger.verify() == 3
    out = capsys.readouterr().out
    assert f"TAMPERED: first bad entry {forged}: entry {forged}: " in out
    assert message in out
    assert "BALANCE MISMATCH" not in out  # the forger made every table agree; only the key shows it


def test_a_lot_status_flipped_to_released_is_caught(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    superuser(ledger.url, f"UPDATE lots SET status = 'released' WHERE lot_id = {ledger.lot}")
    assert ledger.verify() == 3
    out = capsys.readouterr().out
    assert f"lot {ledger.lot}: status released, the ledger says quarantined" in out
    assert "first bad entry" not in out  # no entry changed: the derived state shows it


def test_a_unit_moved_without_an_entry_is_caught(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    superuser(ledger.url, f"UPDATE units SET status = 'available' WHERE epc_uri = '{EPC}'")
    assert ledger.verify() == 3
    assert f"unit {EPC}: at {FRIDGE} (available), the ledger says {FRIDGE} (quarantined)" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (["DROP TRIGGER ledger_entries_no_update ON ledger_entries"],
         "trigger ledger_entries_no_update on ledger_entries is missing"),
        (["ALTER TABLE ledger_entries DISABLE TRIGGER USER"],
         "trigger ledger_entries_no_truncate is disabled"),
        (["ALTER TABLE ledger_entries DISABLE TRIGGER USER",
          "ALTER TABLE ledger_entries ENABLE TRIGGER USER"],
         "trigger ledger_entries_no_update is not ENABLE ALWAYS"),
        (["CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger"
          " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"],
         "function ledger_entries_append_only was redefined"),
        (["GRANT UPDATE ON ledger_entries TO coldtrace_service"],
         "the service role coldtrace_service may UPDATE on ledger_entries"),
        (["GRANT INSERT ON lots TO coldtrace_readonly"],
         "the read-only role coldtrace_readonly may INSERT on lots"),
        (["UPDATE database_roles SET role_name = 'pg_monitor' WHERE purpose = 'service'",
          "GRANT DELETE ON ledger_entries TO coldtrace_service"],
         "coldtrace_service was granted DELETE on ledger_entries"),
        (["CREATE RULE hide AS ON INSERT TO ledger_entries DO INSTEAD NOTHING"],
         "ledger_entries has rewrite rules"),
    ],
)  # fmt: skip
def test_guards_taken_away_are_caught(
    ledger: Ledger, capsys: pytest.CaptureFixture[str], statements: list[str], message: str
) -> None:
    superuser(ledger.url, *statements)  # grants are per database: this one is thrown away
    assert ledger.verify() == 3
    assert f"GUARD NOT IN PLACE: {message}" in capsys.readouterr().out


def test_a_role_that_cannot_read_exits_2_not_3(
    ledger: Ledger, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    name = "ct_noread_" + ledger.url.rsplit("/", 1)[1][-8:]
    superuser(postgres_url, f"CREATE ROLE {name} LOGIN")
    try:
        url = ledger.url.replace("postgres@", f"{name}@", 1)
        assert main(["ledger", "verify", "--database-url", url]) == 2
        assert "cannot read the ledger" in capsys.readouterr().err
    finally:
        superuser(postgres_url, f"DROP ROLE {name}")


def test_without_the_key_an_unsigned_append_is_still_caught(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = forge_release(ledger, None)
    assert main(["ledger", "verify", "--database-url", ledger.url]) == 3
    out = capsys.readouterr().out
    assert "signatures NOT checked" in out
    assert f"first bad entry {forged}" in out


def test_signed_heads_exported_to_log_file_and_webhook_catch_a_removed_tail(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    received: list[bytes] = []

    def hook(request: httpx.Request) -> httpx.Response:
        received.append(request.content)
        return httpx.Response(204)

    anchors = tmp_path / "anchors.jsonl"
    settings = AnchorSettings(file=anchors, webhook_url="https://anchor.example/heads")

    async def export_head() -> Anchor:
        async with (
            await psycopg.AsyncConnection.connect(ledger.url) as conn,
            httpx.AsyncClient(transport=httpx.MockTransport(hook)) as client,
        ):
            anchor = await read_anchor(conn, ledger.signer, datetime.now(UTC))
            assert anchor is not None
            await export(anchor, settings, client)
            return anchor

    with caplog.at_level("INFO", logger="cloud.ledger.anchoring"):
        anchor = asyncio.run(export_head())
    assert anchor.entry_id == 4
    assert f"ledger head 4:{anchor.entry_hash.hex()}" in caplog.text
    assert [json.loads(r) for r in received] == [json.loads(anchors.read_text())]
    assert ledger.verify("--anchors-file", str(anchors)) == 0
    capsys.readouterr()

    # the superuser removes the quarantine entry and puts the head, balances and lot back
    superuser(
        ledger.url,
        "ALTER TABLE ledger_entries DISABLE TRIGGER USER",
        "DELETE FROM ledger_entries WHERE entry_id = 4",
        "ALTER TABLE ledger_entries ENABLE ALWAYS TRIGGER ledger_entries_no_update",
        "ALTER TABLE ledger_entries ENABLE ALWAYS TRIGGER ledger_entries_no_truncate",
        "UPDATE ledger_head SET (last_entry_id, last_hash) = (SELECT entry_id, entry_hash"
        " FROM ledger_entries WHERE entry_id = 3)",
        "DELETE FROM balances WHERE status = 'quarantined'",
        f"UPDATE balances SET quantity = 10 WHERE location_id = '{FRIDGE}'",
        f"UPDATE units SET status = 'available' WHERE epc_uri = '{EPC}'",
        f"UPDATE lots SET status = 'available' WHERE lot_id = {ledger.lot}",
    )
    assert ledger.verify() == 0  # chain, signatures and state agree: only the anchor shows it
    capsys.readouterr()
    assert ledger.verify("--anchors-file", str(anchors)) == 3
    assert "entry 4: anchored earlier but no longer in the ledger" in capsys.readouterr().out

    record = json.loads(anchors.read_text())
    record["entry_id"] = 3  # an anchor record edited to match: its signature no longer does
    anchors.write_text(json.dumps(record) + "\n")
    assert ledger.verify("--anchors-file", str(anchors)) == 3
    assert "head 3 not signed by a trusted key" in capsys.readouterr().out


def test_keygen_writes_a_private_key_only_once(tmp_path: Path) -> None:
    private, public = tmp_path / "ledger.key", tmp_path / "ledger.pub"
    assert main(["ledger", "keygen", str(private), str(public)]) == 0
    assert private.stat().st_mode & 0o777 == 0o600
    signer = signing.load_signer(private.read_bytes())
    assert signing.key_id(signing.load_public(public.read_bytes())) == signer.key_id
    assert main(["ledger", "keygen", str(private), str(public)]) == 1
    assert signing.load_signer(private.read_bytes()).key_id == signer.key_id


async def test_the_service_signs_what_requests_and_the_processor_write_and_exports_its_head(
    timescale_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key reaches the request handlers and the head export through the app (the processor:
    tests/cloud/test_db_roles.py), never the database."""
    from cloud.auth.model import Role
    from cloud.auth.service import add_user
    from tests.support.cloud_ingest import app_client

    signer = LedgerSigner.generate()
    key = tmp_path / "ledger.key"
    key.write_bytes(signer.private_pem())
    public = tmp_path / "ledger.pub"
    public.write_bytes(signer.public_pem())
    anchors = tmp_path / "heads.jsonl"
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await seed(conn)
        lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="S1", expiry=None)
        token = await add_user(conn, "op-1", Role.OPERATOR)
        await conn.commit()
    ledger = {"signing_key_file": str(key), "anchor": {"file": str(anchors), "interval": "PT0.1S"}}
    async with app_client(timescale_url, run_scheduler=True, ledger=ledger) as client:
        response = await client.post(
            "/v1/ledger/movements",
            json={"movement": "receive", "lot_id": lot, "quantity": 3, "to_location": DOCK,
                  "to_status": "available", "reason": "delivery"},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        for _ in range(100):  # the head export runs every 0.1 s
            if anchors.exists() and anchors.read_text().strip():
                break
            await asyncio.sleep(0.05)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        cur = await conn.execute("SELECT signing_key_id, signature FROM ledger_entries")
        rows = await cur.fetchall()
    assert [(kid, len(bytes(sig))) for kid, sig in rows] == [(signer.key_id, 64)]
    record = Anchor.from_json(anchors.read_text().splitlines()[0])
    assert record.entry_id == 1
    assert record.signed_by(signing.TrustedKeys.of(signer.public_key))
    args = ["ledger", "verify", "--database-url", timescale_url, "--public-key", str(public)]
    assert await asyncio.to_thread(main, [*args, "--anchors-file", str(anchors)]) == 0
    assert "signatures: 1 signed entries checked" in capsys.readouterr().out


async def test_entries_from_before_signing_are_accepted_only_when_said(
    timescale_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = LedgerSigner.generate()
    public = tmp_path / "ledger.pub"
    public.write_bytes(signer.public_pem())
    dock = Place(DOCK, Status.AVAILABLE)
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await seed(conn)
        lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="L1", expiry=None)
        await post(conn, [Draft(Movement.RECEIVE, lot, 2, T0, "dock", to=dock)])  # no key yet
        with signing.bound(signer):
            await post(conn, [Draft(Movement.RECEIVE, lot, 3, T0, "dock", to=dock)])
        await conn.commit()
    args = ["ledger", "verify", "--database-url", timescale_url, "--public-key", str(public)]
    assert await asyncio.to_thread(main, args) == 3
    assert "first bad entry 1: entry 1: not signed" in capsys.readouterr().out
    assert await asyncio.to_thread(main, [*args, "--unsigned-before", "2"]) == 0
