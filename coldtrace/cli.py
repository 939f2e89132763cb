"""The ``coldtrace`` command: the composition root that builds settings and wires the parts.

Subcommands: ``services`` (private PostgreSQL and Mosquitto), ``db`` (migrations, storage mode),
``cloud`` (the service), ``edge`` (the gateway agent), ``sim`` (device simulators), ``demo``.
Each part registers its own subcommands here, so this module stays a thin dispatcher.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence

from coldtrace import devservices

Handler = Callable[[argparse.Namespace], int]


def _database_url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("COLDTRACE_CLOUD_DATABASE_URL")
    if url:
        return str(url)
    return devservices.PostgresService.default().start()


def _cmd_services(args: argparse.Namespace) -> int:
    if args.ha:
        from coldtrace import ha

        cluster = ha.HaCluster.default()
        if args.action == "start":
            print(json.dumps({"database_url": cluster.start()}, indent=2))
        elif args.action == "stop":
            cluster.stop()
        else:
            up = cluster.running()
            print(json.dumps({"database_url": cluster.url() if up else None,
                              "cluster": cluster.cluster() if up else None}, indent=2))  # fmt: skip
        return 0
    if args.action == "start":
        print(json.dumps(devservices.start_all(), indent=2))
    elif args.action == "stop":
        devservices.stop_all()
    else:
        pg = devservices.PostgresService.default()
        mq = devservices.MosquittoService.default()
        print(
            json.dumps(
                {
                    "postgres": pg.url if pg.running() else None,
                    "mosquitto": mq.url if mq.running() else None,
                },
                indent=2,
            )
        )
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    if args.action in ("backup", "restore", "archive-wal"):
        from cloud.operations import cli as operations_cli

        return operations_cli.run(args, _database_url)
    from psycopg import AsyncConnection

    from cloud.storage.capabilities import probe
    from cloud.storage.migrations import migrate

    async def run() -> int:
        async with await AsyncConnection.connect(_database_url(args)) as conn:
            if args.action == "migrate":
                flag = {"auto": None, "on": True, "off": False}[args.timescaledb]
                # read by migration 0060 when it first creates the roles (docs/security.md)
                await conn.execute(
                    "SELECT set_config('coldtrace.role_prefix', %s, false)", (args.role_prefix,)
                )
                await conn.commit()  # a session setting: it outlives this transaction
                applied = await migrate(conn, timescaledb=flag)
                print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
            caps = await probe(conn)
            print(f"storage: {caps.mode.value}")
        return 0

    return asyncio.run(run())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("coldtrace")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coldtrace", description=__doc__)
    parser.add_argument("--version", action="version", version=f"coldtrace {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    services = sub.add_parser("services", help="private PostgreSQL + Mosquitto for tests and demo")
    services.add_argument("action", choices=["start", "stop", "status"])
    services.add_argument(
        "--ha",
        action="store_true",
        help="the replicated cluster instead: etcd and two Patroni members (synchronous)",
    )
    services.set_defaults(handler=_cmd_services)

    db = sub.add_parser("db", help="database schema, backups and restores")
    db.add_argument("action", choices=["migrate", "mode", "backup", "restore", "archive-wal"])
    db.add_argument("--database-url", help="default: $COLDTRACE_CLOUD_DATABASE_URL or private")
    db.add_argument(
        "--timescaledb",
        choices=["auto", "on", "off"],
        default="auto",
        help="create the TimescaleDB extension on first migration (default: if offered)",
    )
    db.add_argument(
        "--role-prefix",
        default="coldtrace",
        help="names of the service and read-only roles the first migration creates:"
        " PREFIX_service, PREFIX_readonly (default: coldtrace)",
    )
    from cloud.operations import cli as operations_cli

    operations_cli.add_arguments(db)
    db.set_defaults(handler=_cmd_db)

    cloud = sub.add_parser("cloud", help="the cloud service")
    cloud_sub = cloud.add_subparsers(dest="cloud_command", required=True)
    from cloud import cli as cloud_cli

    cloud_cli.register(cloud_sub, _database_url)

    for register in _extensions():
        register(sub)
    return parser


def _extensions() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """Subcommands contributed by the parts (edge, sim, demo, ledger, …), when present."""
    from coldtrace import commands

    return commands.REGISTRARS


def _leaf(err: BaseException) -> BaseException:
    """The first real error inside task-group wrappers."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return err


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0].strip() if lines else type(err).__name__


def user_error(err: BaseException) -> str | None:
    """One clear line for an error the user can act on, or None for a bug (keep its traceback).

    Bad or unreachable database URLs, a database without the coldtrace schema, refused
    permissions, invalid settings, missing files and the demo's own refusals.
    """
    import psycopg
    import pydantic

    from cloud.operations import OperationsError
    from coldtrace.demo import DemoError

    def settings(e: BaseException) -> str:
        assert isinstance(e, pydantic.ValidationError)
        return "invalid setting: " + "; ".join(
            f"{'.'.join(str(p) for p in x['loc']) or 'value'}: {x['msg']}" for x in e.errors()
        )

    def file(e: BaseException) -> str:
        assert isinstance(e, OSError)
        return f"{e.strerror}: {e.filename}"

    rules: list[tuple[Callable[[BaseException], bool], Callable[[BaseException], str]]] = [
        (lambda e: isinstance(e, DemoError | OperationsError), str),
        (
            lambda e: isinstance(e, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn),
            lambda e: (
                f"the database is not migrated to this version ({_first_line(e)}):"
                " run `coldtrace db migrate --database-url URL` first"
            ),
        ),
        (
            lambda e: isinstance(e, psycopg.errors.InsufficientPrivilege),
            lambda e: f"the database role may not do this: {_first_line(e)}",
        ),
        (
            lambda e: isinstance(e, psycopg.OperationalError),
            lambda e: f"cannot connect to the database: {_first_line(e)}",
        ),
        (  # no SQLSTATE: raised while parsing the connection string
            lambda e: type(e) is psycopg.ProgrammingError,
            lambda e: f"bad database URL: {_first_line(e)}",
        ),
        (lambda e: isinstance(e, pydantic.ValidationError), settings),
        (lambda e: isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError), file),
    ]
    err = _leaf(err)
    for applies, say in rules:
        if applies(err):
            return say(err)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command. Errors a user can fix are one line on stderr (exit status 1);
    COLDTRACE_TRACEBACK=1 shows their traceback too. Bugs keep their traceback."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # sorted by user_error; the rest re-raised with its traceback
        message = user_error(err)
        if message is None or os.environ.get("COLDTRACE_TRACEBACK") == "1":
            raise
        print(f"coldtrace {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
