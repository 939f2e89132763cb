"""Failover without loss on Patroni: a gateway streams a fridge's warm spell through the real
edge outbox and uplink into the cloud (ingest and processor in-process) on a two-member Patroni
cluster; the leader's postmaster is killed with SIGKILL mid-stream, Patroni promotes the
standby, the stream goes on, and later a planned switchover moves the primary back.

Counted at the end: every reading the gateway had acknowledged stored exactly once, in one boot,
and the processor's effects (one excursion, one quarantine ledger entry per lot in the fridge,
three alerts) exactly once. Run with synchronous replication (nothing acknowledged can be lost)
and with asynchronous replication, where the primary's WAL sender is stopped before the crash so
the new primary surely lacks acknowledged readings: they come back from the gateway's replay
window (one replay), and the end state is the same.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from cloud.ingest.auth import add_gateway
from coldtrace.devservices import ServiceError
from coldtrace.ha import HaCluster, Member
from edge.clock import ManualClock
from edge.outbox import OutboxLimits, SqliteOutbox
from edge.uplink import Uplink, UplinkConfig
from protocols.records import Reading
from tests.support.cloud_ingest import app_client
from tests.support.coldchain_seed import FAST, FRIDGE_A, FRIDGE_B, ROOM, SENSOR, SITE, T0, seed
from tests.support.coldchain_seed import readings as series
from tests.support.databases import DatabaseFactory

pytestmark = pytest.mark.integration

GATEWAY = "cc-gw"
TIMEOUT = 120.0
"""Generous bound for every condition waited on (a loaded 2-core machine)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[HaCluster]:
    folder = Path(tempfile.mkdtemp(prefix="coldtrace-ha-", dir="/var/tmp"))
    folder.chmod(0o755)
    default = HaCluster.default()
    ha = HaCluster(folder, default.user, default.etcd_user)
    try:
        ha.start()
        yield ha
    finally:
        ha.destroy()
        shutil.rmtree(folder, ignore_errors=True)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {TIMEOUT:.0f} s: {what}")


def ticks() -> list[list[Reading]]:
    """An hour, a minute per tick: fridge A warms to 9 °C from minute 10 to 40."""
    warm = series(SENSOR[FRIDGE_A], T0, [5.0] * 10 + [9.0] * 30 + [5.0] * 20)
    normal = series(SENSOR[FRIDGE_B], T0, [5.0] * 60)
    room = series(SENSOR[ROOM], T0, [22.0] * 60)
    return [list(minute) for minute in zip(warm, normal, room, strict=True)]


def uplink_config(token: str) -> UplinkConfig:
    return UplinkConfig.model_validate(
        {"cloud_url": "http://cloud", "allow_insecure_http": True, "token": token,
         "max_batch_records": 30}
    )  # fmt: skip


async def send_until_empty(uplink: Uplink, outbox: SqliteOutbox) -> None:
    """Sends until the cloud acknowledged everything (503s during a failover are retried)."""

    async def empty() -> bool:
        if outbox.stats().records:
            await uplink.send_once()
        return outbox.stats().records == 0

    await until(empty, "the outbox drained")


async def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(sql)
        return list(await cur.fetchall())


async def stored_count(url: str) -> int:
    found = await rows(url, f"SELECT count(*) FROM readings WHERE gateway_id = '{GATEWAY}'")
    return int(str(found[0][0]))


async def wal_sender(ha: HaCluster, leader: Member) -> int:
    """The pid of the primary's WAL sender to the standby."""
    found = await rows(ha.member_url(leader), "SELECT pid FROM pg_stat_replication")
    return int(str(found[0][0]))


def kill_tree(postmaster: int) -> None:
    """SIGKILL to a postmaster and its children at once (a host that loses power)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    for pid in [postmaster, *children]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


async def writable(url: str) -> bool:
    try:
        await rows(url, "SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


async def promoted(ha: HaCluster, old: str) -> bool:
    leader = await asyncio.to_thread(ha.leader)
    return leader is not None and leader.name != old


def member_roles(ha: HaCluster) -> dict[str, tuple[str, str]]:
    return {m["name"]: (m["role"], m["state"]) for m in ha.cluster().get("members", [])}


async def replicating(ha: HaCluster, role: str) -> bool:
    roles = await asyncio.to_thread(member_roles, ha)
    leaders = [n for n, (r, s) in roles.items() if r == "leader" and s == "running"]
    standbys = [n for n, (r, s) in roles.items() if r == role and s in ("running", "streaming")]
    return len(leaders) == 1 and len(standbys) == 1


@pytest.mark.parametrize("mode", ["synchronous", "asynchronous"])
async def test_failover_and_switchover_lose_and_repeat_nothing(
    cluster: HaCluster, mode: str, tmp_path: Path
) -> None:
    standby_role = "sync_standby" if mode == "synchronous" else "replica"
    code = await asyncio.to_thread(
        cluster.request, "PATCH", "/config", {"synchronous_mode": mode == "synchronous"}
    )
    assert code == 200
    await until(lambda: replicating(cluster, standby_role), f"a {standby_role} replicating")
    url = await asyncio.to_thread(DatabaseFactory(cluster.url()).create, "timescaledb")
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await seed(conn)
        token = await add_gateway(conn, GATEWAY, SITE)
        await conn.commit()

    outbox = await SqliteOutbox.open(tmp_path / "outbox.db", OutboxLimits(), ManualClock())
    minutes = ticks()
    first_leader = await asyncio.to_thread(cluster.leader)
    assert first_leader is not None
    async with app_client(url, run_processor=True, processor=FAST) as client:
        uplink = Uplink(GATEWAY, outbox, client, uplink_config(token), ManualClock())
        sender: int | None = None
        for i, minute in enumerate(minutes):
            if i == 17 and mode == "asynchronous":
                # the primary stops sending WAL: what it acknowledges now is on it alone
                sender = await wal_sender(cluster, first_leader)
                os.kill(sender, signal.SIGSTOP)
            await outbox.append(minute)
            await send_until_empty(uplink, outbox)
            if i == 20:  # mid-stream, inside the warm spell: the primary crashes
                if sender is None:
                    os.kill(cluster.postmaster_pid(first_leader), signal.SIGKILL)
                else:
                    acked = outbox.stats().last_seq
                    kill_tree(cluster.postmaster_pid(first_leader))  # the stopped walsender too
                    await until(lambda: promoted(cluster, first_leader.name), "a new primary")
                    await until(lambda: writable(url), "the new primary open for writes")
                    missing = acked - await stored_count(url)
                    assert missing == 12  # minutes 17-20: acknowledged, lost with the primary
                    print(f"asynchronous: the new primary lacked {missing} acknowledged readings")
            if i == 45:  # the old primary is back as a standby: move the primary back to it
                await send_until_empty(uplink, outbox)
                await until(lambda: replicating(cluster, standby_role), "the old primary rejoined")
                current = await asyncio.to_thread(cluster.leader)
                assert current is not None
                assert current.name != first_leader.name  # Patroni promoted the standby
                move = {"leader": current.name, "candidate": first_leader.name}

                async def switched(move: dict[str, str] = move) -> bool:
                    # Patroni refuses (412) until the candidate has caught up with the leader
                    try:
                        code = await asyncio.to_thread(cluster.request, "POST", "/switchover", move)
                    except ServiceError as err:
                        if "412" not in str(err):
                            raise
                        return False
                    return code == 200

                await until(switched, "a switchover Patroni accepts")
        await send_until_empty(uplink, outbox)

        async def processed() -> bool:
            done = await rows(
                url,
                "SELECT bool_and(p.processed_through = g.stored_through) FROM processor_streams p"
                " JOIN gateway_streams g USING (gateway_id, boot_id)",
            )
            return done == [(True,)]

        await until(processed, "the processor caught up")
    await outbox.close()

    leader = await asyncio.to_thread(cluster.leader)
    assert leader is not None
    assert leader.name == first_leader.name  # the switchover moved it back
    sent = [r for minute in minutes for r in minute]
    stored = await rows(
        url,
        "SELECT count(*), count(DISTINCT seq), min(seq), max(seq), count(DISTINCT boot_id)"
        f" FROM readings WHERE gateway_id = '{GATEWAY}'",
    )
    assert stored == [(len(sent), len(sent), 1, len(sent), 1)]  # none lost, none twice
    values = await rows(
        url, f"SELECT value FROM readings WHERE gateway_id = '{GATEWAY}' ORDER BY seq"
    )
    assert [v for (v,) in values] == [r.value for r in sent]
    excursions = await rows(url, "SELECT location_id, kind, level FROM excursions")
    assert excursions == [(FRIDGE_A, "high", "action")]
    quarantines = await rows(
        url,
        "SELECT count(*), count(DISTINCT lot_id) FROM ledger_entries WHERE movement = 'quarantine'",
    )
    assert quarantines == [(2, 2)]  # the two lots in fridge A, once each
    alerts = await rows(url, "SELECT kind FROM alerts ORDER BY alert_id")
    assert [a for (a,) in alerts] == ["excursion_opened", "quarantine", "excursion_closed"]
    replays = uplink.status.outcomes.get("replayed", 0)
    print(f"{mode}: failover and switchover; replays from the gateway's window: {replays}")
    if mode == "synchronous":
        assert replays == 0  # the promoted standby had every acknowledged batch
    else:
        assert replays == 1  # the lost minutes came back from the gateway's replay window
    assert "replay_gap" not in uplink.status.outcomes
