"""Migrations on a running system: checksums, files outside a transaction, bounded lock waits."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import psycopg
import pytest

from cloud.storage.migrations import NO_TRANSACTION, LockPolicy, Migration, MigrationError, migrate

pytestmark = pytest.mark.integration

FAST = LockPolicy(lock_timeout=timedelta(milliseconds=200), attempts=2,
                  backoff=timedelta(milliseconds=50))  # fmt: skip

TABLE = Migration(9001, "9001_t.sql", "CREATE TABLE t (id int, v int);")


async def _checksums(url: str) -> dict[int, str | None]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT version, checksum FROM schema_migrations")
        return {int(v): c for v, c in await cur.fetchall()}


async def test_applied_files_are_checksummed_and_a_changed_file_is_refused(
    timescale_url: str,
) -> None:
    url = timescale_url
    async with await psycopg.AsyncConnection.connect(url) as conn:
        assert await migrate(conn, migrations=[TABLE]) == ["9001_t.sql"]
        changed = Migration(9001, "9001_t.sql", "CREATE TABLE t (id bigint, v int);")
        with pytest.raises(MigrationError, match=r"9001_t\.sql was changed after it was applied"):
            await migrate(conn, migrations=[changed, Migration(9002, "9002_u.sql", "SELECT 1;")])
        assert await migrate(conn, migrations=[TABLE]) == []
    sums = await _checksums(url)
    assert sums[9001] == TABLE.checksum
    assert 9002 not in sums  # nothing after the refusal ran
    assert all(sums.values())  # the packaged migrations are checksummed too


async def test_a_database_migrated_before_checksums_gets_them_on_first_run(
    timescale_url: str,
) -> None:
    url = timescale_url
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("ALTER TABLE schema_migrations DROP COLUMN checksum")
        assert await migrate(conn) == []
    sums = await _checksums(url)
    assert sums
    assert all(sums.values())


async def test_a_no_transaction_file_builds_an_index_concurrently_and_recovers_from_failure(
    timescale_url: str,
) -> None:
    url = timescale_url
    index = Migration(
        9002,
        "9002_idx.sql",
        f"{NO_TRANSACTION}\n-- two statements, split by the PostgreSQL parser; ';' in a string\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\n"
        "COMMENT ON INDEX t_id IS 'unique; built concurrently';\n",
    )
    in_transaction = Migration(9002, "9002_idx.sql", index.sql.split("\n", 1)[1])
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await migrate(conn, migrations=[TABLE])
        await conn.execute("INSERT INTO t VALUES (1, 1), (1, 2)")
        await conn.commit()
        with pytest.raises(MigrationError, match="cannot run inside a transaction block"):
            await migrate(conn, migrations=[TABLE, in_transaction])
        # Duplicates: the concurrent build fails and leaves an INVALID index behind.
        with pytest.raises(MigrationError, match=r"9002_idx\.sql failed: could not create unique"):
            await migrate(conn, migrations=[TABLE, index])
        cur = await conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id'::regclass"
        )
        assert await cur.fetchone() == (False,)
        await conn.execute("DELETE FROM t WHERE v = 2")
        await conn.commit()
        assert await migrate(conn, migrations=[TABLE, index]) == ["9002_idx.sql"]
        cur = await conn.execute(
            "SELECT indisvalid, obj_description('t_id'::regclass) FROM pg_index"
            " WHERE indexrelid = 't_id'::regclass"
        )
        assert await cur.fetchone() == (True, "unique; built concurrently")
    assert (await _checksums(url))[9002] == index.checksum


async def test_a_migration_waits_for_a_lock_only_briefly_and_then_succeeds(
    timescale_url: str,
) -> None:
    url = timescale_url
    alter = Migration(9003, "9003_alter.sql", "ALTER TABLE t ADD COLUMN w int;")
    async with (
        await psycopg.AsyncConnection.connect(url) as conn,
        await psycopg.AsyncConnection.connect(url) as holder,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as reader,
    ):
        await migrate(conn, migrations=[TABLE])
        await holder.execute("SELECT * FROM t")  # a long transaction keeps ACCESS SHARE on t
        started = time.monotonic()
        attempt = asyncio.create_task(migrate(conn, migrations=[TABLE, alter], policy=FAST))
        await asyncio.sleep(0.05)
        # Queued behind the holder, the ALTER would block this read until the holder ends;
        # with lock_timeout it gives up, and the read goes through.
        async with asyncio.timeout(2):
            await reader.execute("SELECT count(*) FROM t")
        with pytest.raises(MigrationError, match="lock was not granted"):
            await attempt
        assert time.monotonic() - started < 3
        await holder.rollback()
        assert await migrate(conn, migrations=[TABLE, alter], policy=FAST) == ["9003_alter.sql"]
