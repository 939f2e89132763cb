"""Restore without loss: a base backup taken while a gateway streams, the cloud's cluster lost and
restored from it, and the gateway refilling what the restore forgot from its replay window.

The cluster is the test's own (``coldtrace db backup`` copies a whole cluster), the cloud runs
in-process against it, the edge is the real outbox and uplink.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cloud.operations import OperationsError, backup
from coldtrace import devservices
from coldtrace.cli import main
from edge.clock import ManualClock
from edge.outbox import OutboxLimits, SqliteOutbox
from edge.uplink import Uplink, UplinkConfig
from tests.edge.conftest import reading
from tests.support.cloud_ingest import app_client, count, create_gateway
from tests.support.databases import DatabaseFactory

pytestmark = pytest.mark.integration

LIMITS = OutboxLimits(max_records=1_000_000, max_bytes=1 << 30)
FIRST = 400
"""Readings stored before the backup starts."""
AFTER = 300
"""Readings sent after the backup has finished: the restore has none of them."""


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the cluster's unprivileged user can reach (not under /root)."""
    path = Path(tempfile.mkdtemp(prefix="coldtrace-restore-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def cluster(directory: Path) -> devservices.PostgresService:
    return devservices.PostgresService(directory, devservices.PostgresService.default().user)


def db_url(service: devservices.PostgresService, name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{service.port}/{name}"


def start_restored(restored: devservices.PostgresService) -> None:
    """Starts a restored data directory on a free port, its socket in its own directory."""
    port = devservices.free_port()
    with (restored.pgdata / "postgresql.auto.conf").open("a") as fh:
        fh.write(f"port = {port}\nunix_socket_directories = '{restored.directory}'\n")
    restored.state_file.write_text(json.dumps({"port": port}))
    devservices._chown(restored.directory, restored.user)
    restored.start()


def uplink_config(token: str) -> UplinkConfig:
    return UplinkConfig.model_validate(
        {"cloud_url": "http://cloud", "allow_insecure_http": True, "token": token,
         "max_batch_records": 50}
    )  # fmt: skip


async def stream(uplink: Uplink, outbox: SqliteOutbox, first: int, last: int) -> None:
    """Appends readings first..last ten at a time and sends until the cloud has them all."""
    for start in range(first, last + 1, 10):
        await outbox.append([reading(i) for i in range(start, min(start + 10, last + 1))])
        await uplink.send_once()
        await asyncio.sleep(0)
    for _ in range(200):
        if not outbox.stats().records:
            return
        await uplink.send_once()
    raise AssertionError(f"{outbox.stats().records} records never acknowledged")


async def test_a_backup_taken_mid_stream_restores_with_zero_loss(
    folder: Path, tmp_path: Path
) -> None:
    original = cluster(folder / "original")
    original.start()
    try:
        url = await asyncio.to_thread(DatabaseFactory(original.url).create, "timescaledb")
        name = url.rsplit("/", 1)[1]
        gateway = await create_gateway(url, "gw-restore")
        outbox = await SqliteOutbox.open(tmp_path / "outbox.db", LIMITS, ManualClock())
        async with app_client(url) as client:
            uplink = Uplink("gw-restore", outbox, client, uplink_config(gateway.token),
                            ManualClock())  # fmt: skip
            await stream(uplink, outbox, 1, FIRST)
            # the backup runs while the gateway keeps sending, and the gateway goes on after it
            taking = asyncio.create_task(asyncio.to_thread(main, [
                "db", "backup", "--database-url", original.url, "--to", str(folder / "backups"),
            ]))  # fmt: skip
            last = FIRST
            while not taking.done():
                await stream(uplink, outbox, last + 1, last + 10)
                last += 10
            assert await taking == 0
            await stream(uplink, outbox, last + 1, last + AFTER)
            last += AFTER
        assert await count(url, "readings", "gateway_id = 'gw-restore'") == last
    finally:
        original.kill()  # the server is lost
    (made,) = (folder / "backups").iterdir()
    info = backup.read_info(made)
    assert info["timescaledb"]

    restored = cluster(folder / "restored")
    restored.directory.mkdir()
    assert main(["db", "restore", "--from", str(made), "--pgdata", str(restored.pgdata)]) == 0
    start_restored(restored)
    try:
        new_url = db_url(restored, name)
        before = await count(new_url, "readings", "gateway_id = 'gw-restore'")
        assert FIRST <= before <= last - AFTER  # the restore forgot what came after the backup
        async with app_client(new_url) as client:
            uplink = Uplink("gw-restore", outbox, client, uplink_config(gateway.token),
                            ManualClock())  # fmt: skip
            await stream(uplink, outbox, last + 1, last + 20)
        assert uplink.status.outcomes.get("replayed") == 1
        assert "replay_gap" not in uplink.status.outcomes
        async with await psycopg.AsyncConnection.connect(new_url) as conn:
            cur = await conn.execute(
                "SELECT count(*), count(DISTINCT (boot_id, seq)), min(seq), max(seq),"
                " count(DISTINCT boot_id) FROM readings WHERE gateway_id = 'gw-restore'"
            )
            assert await cur.fetchone() == (last + 20, last + 20, 1, last + 20, 1)
            cur = await conn.execute(
                "SELECT value FROM readings WHERE gateway_id = 'gw-restore' ORDER BY seq"
            )
            values = [row[0] for row in await cur.fetchall()]
        assert values == [reading(i).value for i in range(1, last + 21)]
        await outbox.close()
    finally:
        restored.stop()


def test_restore_refuses_a_used_data_directory_and_a_folder_that_is_no_backup(
    tmp_path: Path,
) -> None:
    with pytest.raises(OperationsError, match="not a coldtrace backup"):
        backup.restore(tmp_path, tmp_path / "new")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / backup.MANIFEST).write_text("{}")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "PG_VERSION").write_text("15")
    with pytest.raises(OperationsError, match="not empty"):
        backup.restore(tmp_path / "b", tmp_path / "used")


async def test_a_restore_with_the_wal_archive_reaches_the_last_commit(folder: Path) -> None:
    original = cluster(folder / "original")
    original.start()
    archive = folder / "wal"
    archive.mkdir()
    command = await asyncio.to_thread(backup.archive_wal_command, original.url, archive)
    archiver = await asyncio.create_subprocess_exec(*command)
    try:
        url = await asyncio.to_thread(DatabaseFactory(original.url).create, "timescaledb")
        name = url.rsplit("/", 1)[1]
        info = await asyncio.to_thread(backup.backup, original.url, folder / "backups")
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await conn.execute("CREATE TABLE after_backup (n int)")
            await conn.execute("INSERT INTO after_backup SELECT generate_series(1, 1000)")
            await conn.commit()
            # pg_receivewal --synchronous flushes as soon as the server sends: wait for it
            cur = await conn.execute("SELECT pg_current_wal_lsn()::text")
            row = await cur.fetchone()
            assert row is not None
            await until_archived(original.url, str(row[0]))
    finally:
        archiver.terminate()
        await archiver.wait()
        original.kill()
    # pg_receivewal writes its files 0600: recovery reads them as the server's user
    devservices._chown(archive, original.user)
    restored = cluster(folder / "restored")
    restored.directory.mkdir()
    backup.restore(info.path, restored.pgdata, owner=restored.user, wal_archive=archive)
    start_restored(restored)
    try:
        async with await psycopg.AsyncConnection.connect(db_url(restored, name)) as conn:
            for _ in range(600):  # recovery replays the archive, then opens for writes
                cur = await conn.execute("SELECT pg_is_in_recovery()")
                if await cur.fetchone() == (False,):
                    break
                await asyncio.sleep(0.1)
            cur = await conn.execute("SELECT count(*) FROM after_backup")
            assert await cur.fetchone() == (1000,)  # committed after the backup, replayed
    finally:
        restored.stop()


async def until_archived(server_url: str, lsn: str) -> None:
    """Waits until the archiver's replication connection has flushed ``lsn``."""
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        for _ in range(600):
            cur = await conn.execute(
                "SELECT bool_or(flush_lsn >= %s::pg_lsn) FROM pg_stat_replication", (lsn,)
            )
            if await cur.fetchone() == (True,):
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the WAL archiver never flushed {lsn}")
