"""Least-privilege roles (issue 12.4): connect as each role and prove what it can and cannot do."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from cloud.jobs.retention import prune
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import ensure_lot, post
from cloud.ledger.signing import LedgerSigner
from cloud.storage.migrations import migrate
from cloud.storage.roles import (
    APPEND_ONLY,
    SECRET_COLUMN,
    SERVICE_READ_ONLY,
    RoleNames,
    role_names,
)
from coldtrace.cli import main
from tests.support import coldchain_seed
from tests.support.cloud_ingest import app_client, batch_with
from tests.support.cloud_ingest import post as post_batch
from tests.support.databases import DatabaseFactory
from tests.support.ledger_seed import DOCK, GTIN_A, seed

pytestmark = pytest.mark.integration

Refused = (psycopg.errors.InsufficientPrivilege, psycopg.errors.FeatureNotSupported)


def as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port}"))


def names_of(url: str) -> RoleNames:
    async def run() -> RoleNames | None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await role_names(conn)

    names = asyncio.run(run())
    assert names is not None
    return names


@pytest.fixture
def login(postgres_url: str) -> Iterator[dict[str, str]]:
    """Login roles that are members of the group roles (roles are cluster-wide: unique names)."""
    made: list[str] = []

    def make(group: str | None) -> str:
        name = f"ct_login_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            create = "CREATE ROLE {} LOGIN" if group else "CREATE ROLE {} LOGIN CREATEDB"
            conn.execute(sql.SQL(create).format(sql.Identifier(name)))
            if group is not None:
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(name))
                )
        made.append(name)
        return name

    yield {
        "service": make("coldtrace_service"),
        "readonly": make("coldtrace_readonly"),
        "owner": make(None),
    }
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for name in made:
            owned = conn.execute(
                "SELECT datname FROM pg_database WHERE datdba = to_regrole(%s)", (name,)
            ).fetchall()
            for (database,) in owned:
                conn.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database))
                )
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def refused(url: str, statement: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement.encode())
        except Refused:
            return True
    return False


async def _ledger(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await seed(conn)
        lot = await ensure_lot(conn, gtin=GTIN_A, lot_number="R1", expiry=None)
        at = datetime(2026, 3, 1, tzinfo=UTC)
        await post(
            conn, [Draft(Movement.RECEIVE, lot, 5, at, "dock", to=Place(DOCK, Status.AVAILABLE))]
        )
        await conn.commit()
        return lot


def test_the_roles_are_recorded_with_the_default_prefix(timescale_url: str) -> None:
    assert names_of(timescale_url) == RoleNames("coldtrace_service", "coldtrace_readonly")


def test_the_service_writes_but_cannot_rewrite_the_ledger(
    timescale_url: str, login: dict[str, str]
) -> None:
    service = as_user(timescale_url, login["service"])
    asyncio.run(_ledger(service))  # master data, a lot and a ledger entry, as the service
    for statement in (
        "UPDATE ledger_entries SET quantity = 6",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries",
        "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update",
        "ALTER TABLE ledger_entries DISABLE TRIGGER USER",
        "DROP TRIGGER ledger_entries_no_update ON ledger_entries",
        "ALTER TABLE lots ADD COLUMN x int",
        "DROP TABLE balances",
        "UPDATE audit_log SET reason = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE readings",
        "DELETE FROM schema_migrations",
        "INSERT INTO database_roles VALUES ('service', 'postgres')",
        "CREATE TABLE mine (x int)",
        "CREATE EXTENSION pgcrypto",  # a trusted extension: needs CREATE on the database
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "ALTER ROLE coldtrace_service SUPERUSER",
        "SET ROLE postgres",
        "SELECT coldtrace_drop_chunks('ledger_entries', now())",
    ):
        assert refused(service, statement), statement
    with psycopg.connect(service) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row == (False,)
        assert conn.execute("SELECT count(*) FROM ledger_entries").fetchone() == (1,)


def test_the_readonly_role_reads_but_changes_nothing_and_sees_no_secrets(
    timescale_url: str, login: dict[str, str]
) -> None:
    asyncio.run(_ledger(timescale_url))
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        conn.execute("INSERT INTO gateways (gateway_id, token_hash) VALUES ('gw', '\\x00')")
    reader = as_user(timescale_url, login["readonly"])
    with psycopg.connect(reader) as conn:
        for query in (
            "SELECT count(*) FROM ledger_entries",
            "SELECT count(*) FROM readings",
            "SELECT count(*) FROM readings_hourly",
            "SELECT status FROM lots",
            "SELECT gateway_id, site_id FROM gateways",
            "SELECT user_id, created_at FROM api_tokens",
        ):
            conn.execute(query.encode()).fetchall()
    for statement in (
        "SELECT token_hash FROM gateways",
        "SELECT * FROM gateways",
        "SELECT token_hash FROM api_tokens",
        "INSERT INTO sites (site_id, name) VALUES ('x', 'x')",
        "UPDATE lots SET status = 'released'",
        "DELETE FROM readings",
        "TRUNCATE alerts",
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "COPY lots FROM PROGRAM 'echo'",
        "COPY (SELECT 1) TO '/tmp/coldtrace-readonly-copy'",
        "SELECT pg_read_file('/etc/passwd')",
        "CREATE TABLE mine (x int)",
        "CREATE EXTENSION pgcrypto",
        "SELECT coldtrace_drop_chunks('readings', now())",
    ):
        assert refused(reader, statement), statement
    # an auditor checks the ledger with the read-only role: it reads all verify needs
    assert main(["ledger", "verify", "--database-url", reader]) == 0


def test_a_non_superuser_owner_migrates_and_later_tables_are_granted(
    postgres_url: str, login: dict[str, str]
) -> None:
    """The database (dropped with its owner by the fixture) is set up as a deploy does it."""
    owner = login["owner"]
    name = f"ct_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(owner)))  # fmt: skip
    super_url = urlunsplit(urlsplit(postgres_url)._replace(path="/" + name))
    with psycopg.connect(super_url, autocommit=True) as conn:  # the bootstrap step of a deploy
        conn.execute("CREATE EXTENSION timescaledb")
    owner_url = as_user(super_url, owner)

    async def run(statement: str | None) -> None:
        async with await psycopg.AsyncConnection.connect(owner_url) as conn:
            if statement is not None:
                await conn.execute(statement.encode())
                await conn.commit()
            await migrate(conn)

    asyncio.run(run(None))
    with psycopg.connect(super_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
            " WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'm')"
        ).fetchall()
    assert owners == [(owner,)]
    # a table of a later migration (any later DDL of the owner) is covered after migrating
    asyncio.run(run("CREATE TABLE later (id int PRIMARY KEY, note text, api_secret text)"))
    service = as_user(super_url, login["service"])
    reader = as_user(super_url, login["readonly"])
    with psycopg.connect(service, autocommit=True) as conn:
        conn.execute("INSERT INTO later VALUES (1, 'n', 's')")
        conn.execute("UPDATE later SET note = 'm'")
    with psycopg.connect(reader) as conn:
        assert conn.execute("SELECT note FROM later").fetchall() == [("m",)]
    assert refused(reader, "SELECT api_secret FROM later")
    assert refused(service, "ALTER TABLE later ADD COLUMN y int")
    asyncio.run(_ledger(service))
    assert refused(service, "DELETE FROM ledger_entries")


async def test_the_service_role_runs_ingest_processing_quarantine_and_retention(
    timescale_url: str, login: dict[str, str]
) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        lots = await coldchain_seed.seed(conn)
        await conn.commit()
    service = as_user(timescale_url, login["service"])
    from cloud.ingest.auth import add_gateway

    async with await psycopg.AsyncConnection.connect(service) as conn:
        token = await add_gateway(conn, "cc-gw", coldchain_seed.SITE)
        await conn.commit()
    t0 = coldchain_seed.T0
    warm = coldchain_seed.readings(coldchain_seed.SENSOR[coldchain_seed.FRIDGE_A], t0,
                                   [5.0] * 5 + [9.0] * 40)  # fmt: skip
    batch = batch_with("cc-gw", uuid.uuid4(), 1, warm)
    fast = {"poll_interval": "PT0.2S", "retry_initial": "PT0.05S", "retry_max": "PT0.2S"}
    signer = LedgerSigner.generate()
    ledger = {"signing_key": signer.private_pem().decode()}
    async with app_client(service, run_processor=True, processor=fast, ledger=ledger) as client:
        from tests.support.cloud_ingest import Gateway

        response = await post_batch(client, Gateway("cc-gw", token), batch)
        assert response.status_code == 200, response.text
        # the contact stamp and the heartbeat's interval are the service's to write
        beat = {"interval_seconds": 60, "sent_at": datetime.now(UTC).isoformat()}
        response = await client.post(
            "/v1/gateway/heartbeat", json=beat, headers=Gateway("cc-gw", token).headers
        )
        assert response.status_code == 204, response.text
        deadline = time.monotonic() + 30
        while True:
            async with await psycopg.AsyncConnection.connect(service) as conn:
                cur = await conn.execute("SELECT status FROM lots WHERE lot_id = %s", (lots["a1"],))
                row = await cur.fetchone()
                cur = await conn.execute("SELECT last_error FROM processor_streams")
                errors = [r[0] for r in await cur.fetchall() if r[0] is not None]
            assert errors == []
            if row == ("quarantined",) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert row == ("quarantined",)
    async with await psycopg.AsyncConnection.connect(service) as conn:
        cur = await conn.execute(
            "SELECT DISTINCT signing_key_id FROM ledger_entries WHERE movement = 'quarantine'"
        )
        assert await cur.fetchall() == [(signer.key_id,)]  # the processor signs as the service
    async with await psycopg.AsyncConnection.connect(service) as conn:
        cur = await conn.execute(
            "SELECT last_contact_at IS NOT NULL, heartbeat_interval FROM gateways"
            " WHERE gateway_id = 'cc-gw'"
        )
        assert await cur.fetchone() == (True, timedelta(seconds=60))
        pruned = await prune(conn, "readings", timedelta(days=1), datetime.now(UTC))
        assert pruned.method == "drop_chunks"
        assert pruned.removed >= 1


def test_db_migrate_role_prefix_gives_a_database_roles_of_its_own(
    databases: DatabaseFactory, postgres_url: str
) -> None:
    prefix = f"ct_px_{uuid.uuid4().hex[:8]}"
    url = databases.create(migrated=False)
    try:
        args = ["db", "migrate", "--database-url", url, "--timescaledb", "off"]
        assert main([*args, "--role-prefix", prefix]) == 0
        assert names_of(url) == RoleNames(f"{prefix}_service", f"{prefix}_readonly")
        assert main([*args, "--role-prefix", "other"]) == 0  # recorded names stay
        assert names_of(url) == RoleNames(f"{prefix}_service", f"{prefix}_readonly")
        with psycopg.connect(url) as conn:
            granted = conn.execute(
                "SELECT has_table_privilege(%s, 'ledger_entries', 'INSERT'),"
                " has_table_privilege(%s, 'ledger_entries', 'DELETE'),"
                " has_table_privilege('coldtrace_service', 'ledger_entries', 'INSERT')",
                (f"{prefix}_service", f"{prefix}_service"),
            ).fetchone()
        assert granted == (True, False, False)
    finally:
        databases.drop(url)  # its roles can only go once no database of theirs is left
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for purpose in ("service", "readonly"):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(
                    sql.Identifier(f"{prefix}_{purpose}")))  # fmt: skip


def test_every_column_of_every_table_follows_the_policy(timescale_url: str) -> None:
    """Catalog-driven, so tables of later migrations are checked too (ack tokens, sessions…)."""
    with psycopg.connect(timescale_url) as conn:
        rows = conn.execute(
            "SELECT c.relname, a.attname,"
            " has_column_privilege('coldtrace_readonly', c.oid, a.attname, 'SELECT'),"
            " has_table_privilege('coldtrace_service', c.oid, 'INSERT'),"
            " has_table_privilege('coldtrace_service', c.oid, 'DELETE'), c.relkind"
            " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"
            " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2"
        ).fetchall()
    assert len({r[0] for r in rows}) > 40
    for table, column, readable, insert, delete, kind in rows:
        assert readable is not bool(SECRET_COLUMN.search(column)), f"{table}.{column}"
        writable = kind in ("r", "p") and table not in SERVICE_READ_ONLY
        assert insert is writable, table
        assert delete is (writable and table not in APPEND_ONLY), table
    hidden = {f"{t}.{c}" for t, c, readable, *_ in rows if not readable}
    assert {"gateways.token_hash", "api_tokens.token_hash", "ui_sessions.session_hash",
            "alarm_channels.url", "alarm_deliveries.ack_token"} <= hidden  # fmt: skip
