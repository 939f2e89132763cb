"""``coldtrace demo`` is safe to run twice, and every ``coldtrace`` command fails in one line.

A second demo must stop before touching anything when the port is taken (never talk to the
server already there), when another demo holds the lock on its database, or when anyone is
connected to that database; the database of the running demo must survive. These run the real
command in-process up to its refusal (no whole demo is started: the refusals happen first).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from coldtrace import demo
from coldtrace.cli import build_parser, main
from tests.support.web_dashboard import seeded_site

pytestmark = pytest.mark.integration


@pytest.fixture
def demo_database(demo_postgres_url: str) -> Iterator[tuple[str, str]]:
    """A database with a marker table, as a running demo's would be: (name, url)."""
    name = f"ct_demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(demo_postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(demo_postgres_url)._replace(path=f"/{name}"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE still_here (x int)")
    yield name, url
    with psycopg.connect(demo_postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _still_there(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('still_here') IS NOT NULL").fetchone()
        return bool(row and row[0])


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err


def test_a_port_in_use_is_an_error_and_nothing_is_dropped(
    demo_database: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    name, url = demo_database
    with socket.create_server(("127.0.0.1", 0)) as taken:  # listening, like a running demo
        port = taken.getsockname()[1]
        assert main(["demo", "--port", str(port), "--database-name", name]) == 1
    _one_line_error(capsys, "coldtrace demo: error:", f"port {port}", "already in use")
    assert _still_there(url)


def test_a_second_demo_never_drops_a_running_demos_database(
    demo_postgres_url: str, demo_database: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    name, url = demo_database
    first, _ = demo.claim_database(demo_postgres_url, name, timedelta(seconds=10))
    try:  # the first demo holds its lock (and recreated the database)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE still_here (x int)")
        assert main(["demo", "--port", "0", "--database-name", name]) == 1
        _one_line_error(capsys, "already running on database " + name)
        assert _still_there(url)
        with pytest.raises(demo.DemoError, match="already running"):
            demo.claim_database(demo_postgres_url, name, timedelta(seconds=10))
    finally:
        first.close()
    # the lock goes with the first demo's connection: the database may be recreated again
    again, _ = demo.claim_database(demo_postgres_url, name, timedelta(seconds=10))
    again.close()
    assert not _still_there(url)


def test_a_database_in_use_is_not_dropped(
    demo_postgres_url: str, demo_database: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    name, url = demo_database
    with psycopg.connect(url, application_name="someone's psql"):
        assert main(["demo", "--port", "0", "--database-name", name]) == 1
    _one_line_error(capsys, f"database {name} is in use", "someone's psql")
    assert _still_there(url)


def test_host_serves_on_every_interface() -> None:
    assert build_parser().parse_args(["demo", "--host", "0.0.0.0"]).host == "0.0.0.0"
    with demo.listen_socket("0.0.0.0", 0) as listener:
        port = listener.getsockname()[1]
        local, shown = demo.service_urls("0.0.0.0", port)
        assert local == f"http://127.0.0.1:{port}"
        assert shown.startswith("http://")
        assert shown.endswith(f":{port}")
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # queued by the listen backlog until the cloud child accepts
    assert demo.service_urls("::1", 8000) == ("http://[::1]:8000", "http://[::1]:8000")
    with pytest.raises(demo.DemoError, match=r"cannot listen on 192\.0\.2\.1"):
        demo.listen_socket("192.0.2.1", 0)  # TEST-NET-1: not an address of this machine


async def test_the_cloud_child_serves_on_the_demos_socket(timescale_url: str) -> None:
    listener = demo.listen_socket("127.0.0.1", 0)
    port = listener.getsockname()[1]
    try:
        async with demo.cloud_process(timescale_url, listener, timedelta(seconds=60)) as base:
            assert base == f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{base}/healthz")).status_code == 200
    finally:
        listener.close()


async def test_the_scenario_prints_its_progress(
    timescale_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    backlog = demo.Backlog([])
    async with seeded_site(timescale_url):  # fridge A warm: an open excursion
        watch = asyncio.create_task(demo.watch_scenario(timescale_url, backlog, every=0.1))
        await asyncio.sleep(1.0)
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    out = capsys.readouterr().out.splitlines()
    excursions = [line for line in out if line.startswith("demo: excursion: ")]
    assert len(excursions) == 1, out  # printed once, not at every poll
    assert re.search(r"outside its \w+ limits since \d\d:\d\d \S+$", excursions[0])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "coldtrace 0.1.0"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://nobody@127.0.0.1:1/none", ["cannot connect to the database"]),
        ("not a url", ["bad database URL"]),
        ("postgres://%zz", ["bad database URL"]),
    ],
)
def test_a_bad_database_url_is_one_line(
    url: str, words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["db", "mode", "--database-url", url],
        ["cloud", "gateway", "add", "gw-x", "--site", "s", "--database-url", url],
    ):
        assert main(argv) == 1, argv
        _one_line_error(capsys, f"coldtrace {argv[0]}: error:", *words)
    # commands with their own documented exit codes still say it in one line
    assert main(["ledger", "verify", "--database-url", url]) == 2  # EXIT_UNREADABLE
    _one_line_error(capsys, "cannot read the ledger")
    assert main(["users", "list", "--database-url", url]) == 1
    _one_line_error(capsys)


def test_an_unmigrated_database_is_one_line(
    demo_database: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = demo_database  # has a table, but no coldtrace schema
    assert main(["cloud", "gateway", "add", "gw-x", "--site", "s", "--database-url", url]) == 1
    _one_line_error(capsys, "not migrated", "coldtrace db migrate")
