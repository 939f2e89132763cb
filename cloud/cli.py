"""The ``coldtrace cloud`` subcommands: ``serve``, ``process``,
``gateway add|rotate|disable|site|name``.

The composition root (``coldtrace.cli``) passes in how to find the database URL, since the
default (the private development cluster) lives outside ``cloud``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
import socket
import sys
from collections.abc import Callable

import psycopg

from cloud.config import CloudSettings

UrlResolver = Callable[[argparse.Namespace], str]


def register(
    cloud_sub: argparse._SubParsersAction[argparse.ArgumentParser], url: UrlResolver
) -> None:
    """Adds the cloud subcommands under ``coldtrace cloud``."""
    serve = cloud_sub.add_parser("serve", help="HTTP API, processor and scheduled jobs")
    serve.add_argument("--database-url")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-processor", action="store_true", help="do not run the processor")
    serve.add_argument("--no-scheduler", action="store_true", help="do not run scheduled jobs")
    serve.add_argument("--no-access-log", action="store_true", help="do not log every HTTP request")
    # a listening socket inherited from the parent (coldtrace demo binds the port itself, so a
    # port in use is its error and never another server answering in this one's place)
    serve.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(handler=lambda args: _serve(args, url(args)))

    process = cloud_sub.add_parser("process", help="the processor alone (no HTTP API)")
    process.add_argument("--database-url")
    process.set_defaults(handler=lambda args: _process(url(args)))

    from cloud.processing import stream_cli

    stream_cli.register(cloud_sub, url)

    gateway = cloud_sub.add_parser("gateway", help="gateways and their tokens")
    gateway_sub = gateway.add_subparsers(dest="gateway_command", required=True)
    add = gateway_sub.add_parser("add", help="register a gateway and print its token once")
    add.add_argument("gateway_id")
    add.add_argument(
        "--site",
        help="site the gateway writes for (without it, it may write only for devices bound to"
        " no site)",
    )
    add.add_argument("--rotate", action="store_true", help="replace an existing gateway's token")
    rotate = gateway_sub.add_parser("rotate", help="give a gateway a new token (printed once)")
    rotate.add_argument("gateway_id")
    disable = gateway_sub.add_parser("disable", help="switch a gateway off (its token is refused)")
    disable.add_argument("gateway_id")
    site = gateway_sub.add_parser("site", help="register a gateway to the site it writes for")
    site.add_argument("gateway_id")
    site.add_argument("site_id")
    named = gateway_sub.add_parser("name", help="give a gateway the name people see")
    named.add_argument("gateway_id")
    named.add_argument("name", help='e.g. "Back office gateway"')
    for command in (add, rotate, disable, site, named):
        command.add_argument("--reason", help="why, for the audit trail")
        command.add_argument("--database-url")
    add.set_defaults(handler=lambda args: _gateway_add(args, url(args)))
    rotate.set_defaults(handler=lambda args: _gateway_add(args, url(args), rotate=True))
    disable.set_defaults(handler=lambda args: _gateway_disable(args, url(args)))
    site.set_defaults(handler=lambda args: _gateway_site(args, url(args)))
    named.set_defaults(handler=lambda args: _gateway_name(args, url(args)))


def _serve(args: argparse.Namespace, database_url: str) -> int:
    import uvicorn

    from cloud.app import create_app

    settings = CloudSettings(
        database_url=database_url,
        host=args.host,
        port=args.port,
        run_processor=not args.no_processor,
        run_scheduler=not args.no_scheduler,
    )
    # Open dashboard event streams would otherwise hold a SIGTERM for up to their lifetime;
    # requests in flight (a batch being committed) get this long to finish.
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_graceful_shutdown=5,
        access_log=not args.no_access_log,
        limit_concurrency=settings.limits.max_connections,
    )
    server = uvicorn.Server(config)
    if args.fd is None:
        server.run()
    else:  # socket(fileno=) reads the family from the descriptor (uvicorn's fd= assumes Unix)
        server.run(sockets=[socket.socket(fileno=args.fd)])
    return 0 if server.started else 3  # uvicorn.run's exit code when start-up failed


def _process(database_url: str) -> int:
    from cloud.ledger import signing
    from cloud.processing.processor import Processor
    from cloud.processing.registry import default_steps
    from cloud.storage.database import make_pool

    settings = CloudSettings(database_url=database_url)
    signer = settings.ledger.signer()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        pool = make_pool(
            database_url,
            max_size=2,
            timeout=settings.pool_timeout,
            timeouts=settings.processor.timeouts,
        )
        await pool.open(wait=False)
        try:
            processor = Processor(
                pool, default_steps(), settings.processor, listen_url=database_url
            )
            with signing.bound(signer):  # the quarantines it writes are signed as the service's
                await processor.run(stop)
        finally:
            await pool.close()

    asyncio.run(run())
    return 0


def _actor() -> str:
    """Who ran the command, for the audit trail: the operating-system account."""
    return f"cli:{getpass.getuser()}"


def _gateway_add(args: argparse.Namespace, database_url: str, *, rotate: bool = False) -> int:
    from cloud.admin.gateways import register_gateway, rotate_gateway

    async def run() -> str:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            if rotate or getattr(args, "rotate", False):
                return await rotate_gateway(
                    conn, args.gateway_id, actor=_actor(), reason=args.reason
                )
            return await register_gateway(
                conn, args.gateway_id, args.site, actor=_actor(), reason=args.reason
            )

    try:
        token = asyncio.run(run())
    except psycopg.errors.UniqueViolation:
        print(f"gateway {args.gateway_id!r} exists; use --rotate for a new token", file=sys.stderr)
        return 1
    except psycopg.errors.ForeignKeyViolation:
        print(f"no site {args.site!r}", file=sys.stderr)
        return 1
    except LookupError as err:
        print(str(err), file=sys.stderr)
        return 1
    if not rotate and not getattr(args, "rotate", False) and args.site is None:
        print(
            f"warning: gateway {args.gateway_id!r} has no site: its records of devices mounted"
            " at a site will be refused; set one with 'coldtrace cloud gateway site'",
            file=sys.stderr,
        )
    print(f"gateway {args.gateway_id} token (shown once, store it on the gateway):")
    print(token)
    return 0


def _gateway_site(args: argparse.Namespace, database_url: str) -> int:
    from cloud.admin.gateways import move_gateway

    async def run() -> str | None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await move_gateway(
                conn, args.gateway_id, args.site_id, actor=_actor(), reason=args.reason
            )

    try:
        previous = asyncio.run(run())
    except psycopg.errors.ForeignKeyViolation:
        print(f"no site {args.site_id!r}", file=sys.stderr)
        return 1
    except LookupError as err:
        print(str(err), file=sys.stderr)
        return 1
    print(f"gateway {args.gateway_id} writes for site {args.site_id} (was {previous or 'none'})")
    return 0


def _gateway_name(args: argparse.Namespace, database_url: str) -> int:
    from cloud.admin.gateway_names import clean_name, name_gateway

    async def run() -> str | None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await name_gateway(
                conn, args.gateway_id, args.name, actor=_actor(), reason=args.reason
            )

    try:
        previous = asyncio.run(run())
    except (LookupError, ValueError) as err:
        print(str(err), file=sys.stderr)
        return 1
    shown = clean_name(args.name)
    print(f"gateway {args.gateway_id} is named {shown!r} (was {previous or 'unnamed'})")
    return 0


def _gateway_disable(args: argparse.Namespace, database_url: str) -> int:
    from cloud.admin.gateways import disable_gateway

    async def run() -> bool:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await disable_gateway(conn, args.gateway_id, actor=_actor(), reason=args.reason)

    if not asyncio.run(run()):
        print(f"no enabled gateway {args.gateway_id!r}", file=sys.stderr)
        return 1
    print(f"gateway {args.gateway_id} disabled")
    return 0
