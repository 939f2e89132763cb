"""``coldtrace demo``: the whole chain on one machine, on the private services, with a scenario.

What runs (``make demo``):

1. the private PostgreSQL/TimescaleDB and Mosquitto (``coldtrace.devservices``), a fresh
   database (``coldtrace_demo`` by default), migrated, with the demo's administrator;
2. the cloud service as a child process (``coldtrace cloud serve``: API, processor, jobs,
   dashboard);
3. in this process, the simulators: an OPC-UA server (fridge-1, freezer-1), MQTT loggers
   (fridge-2 and room-1 in our JSON, freezer-2 as a LoRaWAN sensor through ChirpStack), and
   one LLRP reader per dock door;
4. the site commissioned through the cloud's HTTP API as an administrator would
   (``coldtrace.demo_commission``: fridges, freezers, a room, two dock doors, products, sensor
   mounts, the gateway and its sources, nodes, topics and doors), then the lots on hand, ASNs
   and two users (``coldtrace.demo_site``);
5. in this process, the edge agent (``edge.agent.run_agent``), which takes its configuration
   from the cloud (``remote_config``): OPC-UA, MQTT and LLRP sources, dock-door portals, its
   SQLite outbox and its uplink to the cloud.

The scenario: the last ``history`` hours (6 by default) are simulated at full speed by the same
thermal models — fridge-1's compressor fails ``failure_before_now`` (2 h 30 min) before the demo
starts — and uploaded by the edge agent as a logger's backlog would be (a source that yields
the stored readings, then waits). So the excursion, its alerts and the quarantine of the lots in
fridge-1 are computed by the processor from readings that went through the outbox, ingest and
processor like any other. From then on the simulators run in real time and the live sources
take over; the failed compressor stays failed. Pallets pass the dock doors while the demo runs:
one matching its ASN, one with a case too many, one that nobody announced.

Ctrl-C (SIGINT) or SIGTERM stops everything: the edge agent flushes its outbox, the simulators
close, the cloud service gets SIGTERM and is waited for.

Safe to run twice: the demo binds its port itself before touching anything (a port in use is
an error, never another server answering in its place; the cloud child inherits the socket),
and holds a PostgreSQL advisory lock named after its database for as long as it runs, taken
before the database is dropped; a database someone is connected to is not dropped either.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from uuid import uuid4

import httpx
import psycopg
from pydantic import BaseModel, ConfigDict, Field

from cloud.ledger import signing
from cloud.ledger.signing import LedgerSigner
from coldtrace import demo_site, devservices
from edge.agent import SourceSpec
from protocols.records import Quality, Reading, Record
from simulators.scenarios import Scenario, StartFault
from simulators.site import MqttLogger, SimulatedClock, SiteRuntime
from simulators.thermal import Fault

if TYPE_CHECKING:  # imported when the demo runs: it loads the simulators and the agent
    from coldtrace.demo_wiring import Simulators
    from edge.config import EdgeConfig

log = logging.getLogger("coldtrace.demo")


class DemoError(RuntimeError):
    """The demo could not start (a service, the database, the cloud process)."""


class DemoSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database_name: str = Field(default="coldtrace_demo", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    host: str = Field(default="127.0.0.1", min_length=1)
    """The address the dashboard and API listen on (0.0.0.0: every interface, for the LAN)."""
    port: int = Field(default=8000, ge=0, le=65535)
    """The cloud service's port; 0 picks a free one."""
    history: timedelta = Field(default=timedelta(hours=6), gt=timedelta(0))
    failure_before_now: timedelta = Field(default=timedelta(hours=2, minutes=30))
    duration: timedelta | None = None
    """Stop by itself after this long (None: until Ctrl-C or SIGTERM)."""
    pallet_every: timedelta = Field(default=timedelta(seconds=12), gt=timedelta(0))
    startup_timeout: timedelta = Field(default=timedelta(seconds=60), gt=timedelta(0))


# --- the backlog: the simulated hours before now, uploaded through the edge agent -------------


def backfill(
    runtime: SiteRuntime, until: datetime, sensor_ids: dict[str, str], received_at: datetime
) -> list[Reading]:
    """Readings of every unit of ``runtime`` at its logger's interval, from its start to ``until``.

    The runtime (models and scenario) is advanced to ``until`` on the way, so live simulators
    given the same runtime carry on from where the backlog ends.
    """
    every = {
        uid: spec.logger.interval if isinstance(spec.logger, MqttLogger) else timedelta(minutes=1)
        for uid, spec in runtime.specs.items()
    }
    due = {uid: runtime.time + every[uid] for uid in runtime.specs}
    out: list[Reading] = []
    step = min(every.values())
    at = runtime.time + step
    while at <= until:
        runtime.advance_to(at)
        for uid, model in runtime.models.items():
            if due[uid] > at:
                continue
            due[uid] += every[uid]
            sample = model.read_sensor()
            if sample is None:  # a silent probe sends nothing
                continue
            out.append(
                Reading(
                    sensor_id=sensor_ids[uid],
                    time=sample.time,
                    value=sample.value,
                    quality=Quality(sample.status.value),
                    received_at=received_at,
                )
            )
        at += step
    return out


class Backlog:
    """Records waiting to be uploaded, shared by every life of ``BacklogSource``.

    A record leaves the queue only when the agent asks for the next tuple, i.e. once the one
    before is committed to the outbox, so a restarted source resends nothing and loses nothing.
    """

    def __init__(self, records: list[Reading], chunk: int = 500) -> None:
        self._chunks: deque[tuple[Record, ...]] = deque(
            tuple(records[i : i + chunk]) for i in range(0, len(records), chunk)
        )

    @property
    def pending(self) -> int:
        return sum(len(c) for c in self._chunks)

    async def stream(self) -> AsyncIterator[tuple[Record, ...]]:
        while self._chunks:
            yield self._chunks[0]
            self._chunks.popleft()  # resumed: the tuple is on disk
        await asyncio.Event().wait()  # uploaded: stay quiet until the agent stops


class BacklogSource:
    """An edge source (``edge.sources.base`` contract) over a ``Backlog``."""

    def __init__(self, backlog: Backlog) -> None:
        self._backlog = backlog

    @property
    def name(self) -> str:
        return "backlog"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        return None

    def __aiter__(self) -> AsyncIterator[tuple[Record, ...]]:
        return self._backlog.stream()


# --- database and cloud process -----------------------------------------------------------------


LOCK_CLASS = 0x63746465
"""First key of the demo's advisory lock ("ctde"); the second is hashtext(database name)."""


def progress(message: str) -> None:
    """One line of progress for the person who started the demo."""
    print(f"demo: {message}", flush=True)


def claim_database(
    server_url: str, name: str, within: timedelta
) -> tuple[psycopg.Connection[tuple[Any, ...]], str]:
    """Drops and creates database ``name`` on the server; returns the lock's connection and URL.

    The returned connection holds the demo's advisory lock on ``name``: keep it open while the
    demo runs (PostgreSQL releases the lock when it closes, also if this process is killed).
    Refuses with DemoError, before dropping anything, when another demo holds the lock or any
    session is connected to the database. A server still starting up is waited for.
    """
    from urllib.parse import urlsplit, urlunsplit

    deadline = time.monotonic() + within.total_seconds()
    while True:
        try:
            conn = psycopg.connect(
                server_url, autocommit=True, connect_timeout=5, application_name="coldtrace demo"
            )
            break
        except psycopg.OperationalError as err:
            if time.monotonic() >= deadline:
                raise DemoError(f"PostgreSQL at {server_url} is not reachable: {err}") from err
            time.sleep(0.5)
    try:
        _lock_and_recreate(conn, name)
    except BaseException:
        conn.close()
        raise
    return conn, urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def _lock_and_recreate(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> None:
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, name)
    ).fetchone()
    if not (row and row[0]):
        raise DemoError(
            f"a coldtrace demo is already running on database {name}: stop it first,"
            " or give this one another --database-name"
        )
    sessions = conn.execute(
        "SELECT coalesce(nullif(application_name, ''), usename, '?') FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()"
        # autovacuum and other background workers are not users; DROP DATABASE ends them
        " AND backend_type = 'client backend'",
        (name,),
    ).fetchall()
    if sessions:
        who = ", ".join(sorted({str(r[0]) for r in sessions}))
        raise DemoError(
            f"database {name} is in use ({len(sessions)} session(s): {who}) and is not"
            " dropped: close them, or give the demo another --database-name"
        )
    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.execute(f'CREATE DATABASE "{name}"')


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` for the cloud child to inherit.

    Bound here, before anything else happens, so a port in use stops the demo with a clear
    error instead of the demo talking to whatever server already answers there.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as err:
        raise DemoError(f"--host {host}: {err.strerror}") from err
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn; not SO_REUSEPORT
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise DemoError(
                f"port {port} on {host} is already in use (another coldtrace demo or server?):"
                " stop it, or pass --port (0 picks a free one)"
            ) from err
        raise DemoError(f"cannot listen on {host} port {port}: {err.strerror}") from err
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def service_urls(host: str, port: int) -> tuple[str, str]:
    """(URL this machine's clients use, URL to give people) for a service on ``host``."""
    wildcard = host in {"0.0.0.0", "::", ""}  # noqa: S104 (a comparison, not a bind)
    local = "127.0.0.1" if wildcard else host
    shown = local
    if wildcard:
        try:  # the address of the interface that routes outwards; connect() sends nothing
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("192.0.2.1", 9))
                shown = str(probe.getsockname()[0])
        except OSError:
            shown = socket.gethostname()
    return f"http://{_url_host(local)}:{port}", f"http://{_url_host(shown)}:{port}"


async def prepare_database(url: str) -> str:
    """Migrates the database and adds the demo's administrator; returns the admin's token (the
    one step a real site does out of band too: ``coldtrace cloud user add``)."""
    from cloud.auth.model import Role
    from cloud.auth.service import add_user
    from cloud.storage.migrations import migrate

    async with await psycopg.AsyncConnection.connect(url) as conn:
        await migrate(conn, timescaledb=None)
        token = await add_user(conn, "demo-admin", Role.ADMIN)
        await conn.commit()
    return token


async def commission_site(
    base: str, admin_token: str, sims: Simulators, mqtt_url: str, *, database_url: str,
    now: datetime, history: timedelta, signer: LedgerSigner | None,
) -> tuple[str, demo_site.Credentials]:  # fmt: skip
    """The site through the HTTP API, then the stock; returns the gateway's token and users."""
    from coldtrace.demo_commission import commission

    progress("commissioning the site through the HTTP API (units, sensors, gateway, sources)")
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        gateway_token = await commission(
            client, admin_token, sims=sims, mqtt_url=mqtt_url, tag=uuid4().hex[:8],
            mounted_at=now - history - timedelta(hours=1),
        )  # fmt: skip
    progress("loading the lots on hand, the ASNs and the users")
    creds = await load_stock(database_url, now, history, gateway_token, signer)
    return gateway_token, creds


async def load_stock(
    url: str, now: datetime, history: timedelta, gateway_token: str,
    signer: LedgerSigner | None = None,
) -> demo_site.Credentials:  # fmt: skip
    async with await psycopg.AsyncConnection.connect(url) as conn:
        # the stock's ledger entries are signed with the key the demo's service uses
        with signing.bound(signer):
            async with conn.transaction():
                # stock arrives just after the simulated history starts, so it is covered by it
                stocked = now - history + timedelta(minutes=5)
                return await demo_site.load(
                    conn, now=now, stocked_at=stocked, gateway_token=gateway_token
                )


@contextlib.asynccontextmanager
async def cloud_process(
    url: str, listener: socket.socket, startup: timedelta, ledger_key: Path | None = None
) -> AsyncIterator[str]:
    """``coldtrace cloud serve`` on ``listener`` as a child; yields its base URL once /healthz
    answers 200 (the child is then the only one that can answer there)."""
    env = {
        **os.environ,
        **({"COLDTRACE_CLOUD_LEDGER__SIGNING_KEY_FILE": str(ledger_key)} if ledger_key else {}),
        "COLDTRACE_CLOUD_PROCESSOR__POLL_INTERVAL": "PT0.5S",
        "COLDTRACE_WEB_POLL_INTERVAL": "PT1S",
    }
    host, port = listener.getsockname()[:2]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coldtrace", "cloud", "serve", "--database-url", url,
        "--host", str(host), "--port", str(port), "--fd", str(listener.fileno()),
        "--no-access-log", env=env, pass_fds=(listener.fileno(),),
    )  # fmt: skip
    base = service_urls(str(host), int(port))[0]
    try:
        await _wait_healthy(proc, base, startup)
        yield base
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                log.warning("cloud service did not stop in 15 s; killing it")
                proc.kill()
                await proc.wait()


async def _wait_healthy(proc: asyncio.subprocess.Process, base: str, within: timedelta) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within.total_seconds()
    async with httpx.AsyncClient() as client:
        while loop.time() < deadline:
            if proc.returncode is not None:
                raise DemoError(f"the cloud service exited with code {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/healthz", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise DemoError(f"the cloud service did not answer on {base} within {within}")


# --- the run ------------------------------------------------------------------------------------


def ledger_key() -> tuple[LedgerSigner, Path, Path]:
    """A new signing key for this run's fresh ledger, in .data/demo-ledger (private 0600)."""
    folder = devservices.REPO_ROOT / ".data" / "demo-ledger"
    folder.mkdir(parents=True, exist_ok=True)
    signer = LedgerSigner.generate()
    private, public = folder / "ledger.key", folder / "ledger.pub"
    private.unlink(missing_ok=True)
    private.touch(mode=0o600)
    private.write_bytes(signer.private_pem())
    public.write_bytes(signer.public_pem())
    return signer, private, public


def print_banner(
    base: str,
    creds: demo_site.Credentials,
    database_url: str,
    public_key: Path | None = None,
    shown: str | None = None,
    *,
    admin_token: str | None = None,
) -> None:
    verify = (
        f"  Ledger key: {public_key}   (check: coldtrace ledger verify --database-url"
        f" {database_url} --public-key {public_key})\n"
        if public_key
        else ""
    )
    lan = (
        f"  On the LAN: {shown}/ui   (plain HTTP: a trusted network only)\n"
        if shown and shown != base
        else ""
    )
    print(
        f"\ncoldtrace demo is running.\n"
        f"  Dashboard:  {base}/ui   (sign in with an API token below)\n"
        f"{lan}"
        f"  QA user 'demo-qa' token:             {creds.qa_token}\n"
        f"  Operator 'demo-operator' token:      {creds.operator_token}\n"
        + (f"  Admin 'demo-admin' token:            {admin_token}\n" if admin_token else "")
        + f"  Unassigned devices, OPC-UA browse: {base}/ui/discovery\n"
        f"  API:        {base}/docs\n"
        f"  Database:   {database_url}\n"
        f"  Grafana:    see docs/dashboards.md (dashboards/grafana/)\n"
        f"{verify}"
        f"Ctrl-C stops everything.\n",
        flush=True,
    )


async def run(settings: DemoSettings, stop: asyncio.Event) -> int:
    """Runs the demo until ``stop`` is set (or ``settings.duration`` has passed)."""
    from coldtrace.demo_wiring import edge_config, feed_pallets, simulators

    # the port first: a second demo on the same port stops here, having touched nothing
    listener = listen_socket(settings.host, settings.port)
    async with AsyncExitStack() as stack:
        stack.callback(listener.close)
        port = int(listener.getsockname()[1])
        progress(f"listening on {settings.host} port {port}")
        progress("starting PostgreSQL/TimescaleDB and Mosquitto")
        server_url = await asyncio.to_thread(devservices.PostgresService.default().start)
        mqtt_url = await asyncio.to_thread(devservices.MosquittoService.default().start)
        progress(f"creating database {settings.database_name}")
        lock, database_url = await asyncio.to_thread(
            claim_database, server_url, settings.database_name, settings.startup_timeout
        )
        stack.callback(lock.close)  # releases the demo's lock on the database
        now = datetime.now(UTC)
        signer, private_key, public_key = await asyncio.to_thread(ledger_key)
        progress("migrating the database and adding the demo's administrator")
        admin_token = await prepare_database(database_url)
        scenario = Scenario(
            name="compressor-failure",
            description=f"{demo_site.FAILING_UNIT}'s compressor dies",
            events=(StartFault(at=settings.history - settings.failure_before_now,
                               unit=demo_site.FAILING_UNIT, fault=Fault.COMPRESSOR_FAILURE),),
        )  # fmt: skip
        site = demo_site.simulated_site()
        start = now - settings.history
        opcua = SiteRuntime(site, start=start, scenario=scenario, transport="opcua")
        mqtt = SiteRuntime(site, start=start, transport="mqtt")
        sensors = {u.unit_id: u.sensor_id for u in demo_site.UNITS}
        progress(f"simulating the last {settings.history} ({scenario.description})")
        backlog = Backlog(backfill(opcua, now, sensors, now) + backfill(mqtt, now, sensors, now))
        progress("starting the cloud service (API, processor, dashboard)")
        base = await stack.enter_async_context(
            cloud_process(database_url, listener, settings.startup_timeout, private_key)
        )
        listener.close()  # the child has its own copy
        progress("starting the simulators (OPC-UA, MQTT, LoRaWAN, LLRP) and the edge agent")
        live = SimulatedClock(datetime.now(UTC), scale=1.0)
        sims = await simulators(stack, opcua, mqtt, live, mqtt_url)
        gateway_token, creds = await commission_site(
            base, admin_token, sims, mqtt_url, database_url=database_url, now=now,
            history=settings.history, signer=signer,
        )  # fmt: skip
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="coldtrace-demo-")))
        config = edge_config(base, gateway_token, workdir=workdir)
        agent_stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            running = run_demo_agent(config, agent_stop, backlog)
            agent = group.create_task(running, name="edge-agent")
            pallets = group.create_task(
                feed_pallets(sims, settings.pallet_every, report=progress), name="pallets"
            )
            watch = group.create_task(watch_scenario(database_url, backlog), name="progress")
            print_banner(
                base, creds, database_url, public_key, service_urls(settings.host, port)[1],
                admin_token=admin_token,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                seconds = settings.duration.total_seconds() if settings.duration else None
                await asyncio.wait_for(stop.wait(), seconds)
            progress("stopping: the edge agent flushes its outbox, then simulators and cloud")
            pallets.cancel()
            watch.cancel()
            agent_stop.set()
            await agent
    return 0


async def watch_scenario(database_url: str, backlog: Backlog, every: float = 3.0) -> None:
    """Prints the scenario's progress: the backlog's upload, excursions, quarantines, receipts."""
    total = backlog.pending
    progress(f"uploading a backlog of {total} readings through the edge agent's outbox")
    seen: set[str] = set()
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, application_name="coldtrace demo (progress)"
    ) as conn:
        while True:
            if total and backlog.pending == 0:
                progress(f"backlog of {total} readings handed to the outbox; live from now on")
                total = 0
            cur = await conn.execute(
                "SELECT 'excursion ' || l.name || ' ' || e.level, 'excursion: ' || l.name"
                "  || ' outside its ' || e.level || ' limits since '"
                "  || to_char(e.started_at AT TIME ZONE s.timezone, 'HH24:MI') || ' ' || s.timezone"
                " FROM excursions e JOIN locations l USING (location_id)"
                " JOIN sites s ON s.site_id = l.site_id WHERE e.ended_at IS NULL"
                " UNION ALL SELECT 'quarantine ' || count(*), count(*) || ' lot(s) quarantined'"
                " FROM ledger_entries WHERE movement = 'quarantine' HAVING count(*) > 0"
                " UNION ALL SELECT 'receipt ' || passage_id, 'received at ' || door_id || ': '"
                "  || outcome || ' (' || received || ' cases)' FROM receipts"
            )
            for key, text in await cur.fetchall():
                if key not in seen:
                    seen.add(key)
                    progress(str(text))
            await asyncio.sleep(every)


async def run_demo_agent(config: EdgeConfig, stop: asyncio.Event, backlog: Backlog) -> None:
    """The agent with the configuration from the cloud, plus the backlog of simulated history
    (a source of the demo's own, kept across every new configuration)."""
    from coldtrace.demo_wiring import source_specs
    from edge.agent import run_agent

    backlog_spec = _backlog_spec(backlog)

    def specs(configured: EdgeConfig) -> list[SourceSpec]:
        return [*source_specs(configured), backlog_spec]

    await run_agent(config, stop, [backlog_spec], build_sources=specs)


def _backlog_spec(backlog: Backlog) -> SourceSpec:
    return SourceSpec("backlog", partial(BacklogSource, backlog))


# --- command line -------------------------------------------------------------------------------


def _duration(text: str) -> timedelta:
    """``60s``, ``5m``, ``1h`` or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        return timedelta(seconds=float(number) * units[unit])
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: use 60s, 5m or 1h") from err


def _cmd_demo(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = DemoSettings(
        database_name=args.database_name, host=args.host, port=args.port, history=args.history,
        duration=args.duration,
        pallet_every=args.pallet_every,
    )  # fmt: skip

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run(settings, stop)

    return asyncio.run(main())  # a DemoError becomes one line in coldtrace.cli.main


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo", help="simulators + edge agent + cloud + dashboard, with a scenario"
    )
    demo.add_argument("--duration", type=_duration, help="stop after this long (60s, 5m, 1h)")
    demo.add_argument("--port", type=int, default=8000, help="cloud HTTP port (0: a free one)")
    demo.add_argument("--host", default="127.0.0.1",
                      help="address to serve on (0.0.0.0: every interface, so other devices on"
                           " the LAN can open the dashboard; plain HTTP); default 127.0.0.1",
                      )  # fmt: skip
    demo.add_argument("--database-name", default="coldtrace_demo")
    demo.add_argument("--history", type=_duration, default=timedelta(hours=6),
                      help="simulated time before now, sent as a backlog (default 6h)")  # fmt: skip
    demo.add_argument("--pallet-every", type=_duration, default=timedelta(seconds=12),
                      help="time between pallets at the dock doors (default 12s)")  # fmt: skip
    demo.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING"])
    demo.set_defaults(handler=_cmd_demo)
