from __future__ import annotations

import psycopg
import pytest

from cloud.storage.capabilities import StorageMode, probe
from cloud.storage.migrations import available, migrate
from tests.support.databases import DatabaseFactory

pytestmark = pytest.mark.integration


async def test_migrate_is_idempotent_and_recorded(databases: DatabaseFactory) -> None:
    url = databases.create(migrated=False)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        first = await migrate(conn)
        second = await migrate(conn)
        cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        versions = [row[0] for row in await cur.fetchall()]
    assert first == [m.name for m in available()]
    assert second == []
    assert versions == [m.version for m in available()]


@pytest.mark.parametrize(
    ("flag", "mode"), [(None, StorageMode.TIMESCALEDB_APACHE), (False, StorageMode.POSTGRESQL)]
)
async def test_probe_reports_storage_mode(
    databases: DatabaseFactory, flag: bool | None, mode: StorageMode
) -> None:
    url = databases.create(migrated=False)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await migrate(conn, timescaledb=flag)
        caps = await probe(conn)
    assert caps.mode is mode
    assert caps.hypertables is (mode is not StorageMode.POSTGRESQL)
    assert not caps.native_policies


async def test_time_series_layout_follows_the_extension(
    database_url: str, storage_mode: str
) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        caps = await probe(conn)
        if caps.hypertables:
            cur = await conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1"
            )
            names = [row[0] for row in await cur.fetchall()]
            assert {"readings", "tag_reads", "anomaly_scores"} <= set(names)
        else:
            cur = await conn.execute(
                "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING brin%' ORDER BY 1"
            )
            names = [row[0] for row in await cur.fetchall()]
            expected = {"anomaly_scores_time_brin", "readings_time_brin", "tag_reads_time_brin"}
            assert expected <= set(names)
    assert (storage_mode == "timescaledb") is caps.hypertables


async def test_ledger_entries_refuse_update_and_delete(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO sites VALUES ('s1', 'Site 1')")
        await conn.execute(
            "INSERT INTO storage_profiles (profile_id, name) VALUES ('fridge', 'Fridge')"
        )
        await conn.execute(
            "INSERT INTO locations (location_id, site_id, kind, name) "
            " VALUES ('l1', 's1', 'fridge', 'F')"
        )
        await conn.execute("INSERT INTO products VALUES ('00614141123452', 'Vaccine', 'fridge')")
        await conn.execute("INSERT INTO lots (gtin, lot_number) VALUES ('00614141123452', 'A1')")
        await conn.execute(
            "INSERT INTO ledger_entries (effective_at, movement, lot_id, quantity, to_location,"
            " to_status, actor, prev_hash, entry_hash)"
            " VALUES (now(), 'receive', 1, 10, 'l1', 'available', 'test', '\\x00', '\\x01')"
        )
        for statement in (
            "UPDATE ledger_entries SET quantity = 11",
            "DELETE FROM ledger_entries",
            "TRUNCATE ledger_entries",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                await conn.execute(statement)
        cur = await conn.execute("SELECT quantity FROM ledger_entries")
        assert await cur.fetchall() == [(10,)]
