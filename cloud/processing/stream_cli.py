"""``coldtrace cloud stream list|skip``: see stalled streams and set a stuck batch aside.

``skip`` names the gateway, the batch (from ``list``) and a reason; it is refused unless that
batch is the one the stream is failing on (``cloud.processing.streams.set_aside``). The actor in
the audit trail is ``--actor`` or ``cli:<operating-system account>``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from uuid import UUID

import psycopg

from cloud.processing.streams import StreamAdminError, set_aside, stream_states

UrlResolver = Callable[[argparse.Namespace], str]


def register(
    cloud_sub: argparse._SubParsersAction[argparse.ArgumentParser], url: UrlResolver
) -> None:
    stream = cloud_sub.add_parser("stream", help="processing streams: stalled ones, set aside")
    sub = stream.add_subparsers(dest="stream_command", required=True)
    show = sub.add_parser("list", help="streams that are behind, failing or stalled")
    show.add_argument("gateway_id", nargs="?")
    show.add_argument("--database-url")
    show.set_defaults(handler=lambda args: _list(args, url(args)))
    skip = sub.add_parser(
        "skip", help="set aside the batch a stream is failing on, so later batches go on"
    )
    skip.add_argument("gateway_id")
    skip.add_argument("--batch", type=int, required=True, help="the failing batch's id")
    skip.add_argument("--reason", required=True, help="why, for the audit trail")
    skip.add_argument("--boot", type=UUID, help="the stream's boot id, if several are failing")
    skip.add_argument("--actor", help="who decided (default cli:<account>)")
    skip.add_argument("--database-url")
    skip.set_defaults(handler=lambda args: _skip(args, url(args)))


def _list(args: argparse.Namespace, database_url: str) -> int:
    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            states = await stream_states(conn, gateway_id=args.gateway_id)
        for s in states:
            state = (
                f"STALLED since {s.stalled_since:%Y-%m-%d %H:%M:%S}Z"
                if s.stalled_since
                else ("failing" if s.failures else "behind")
            )
            print(
                f"{s.gateway_id} boot {s.boot_id}: {state}; processed {s.processed_through}"
                f" of {s.stored_through}, {s.pending_batches} batches pending"
            )
            if s.failures:
                print(f"  batch {s.failing_batch_id} failed {s.failures}x: {s.last_error}")
        if not states:
            print("every stream is processed")
        return 0

    return asyncio.run(run())


def _skip(args: argparse.Namespace, database_url: str) -> int:
    actor = args.actor or f"cli:{getpass.getuser()}"

    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            done = await set_aside(
                conn,
                args.gateway_id,
                boot_id=args.boot,
                batch_id=args.batch,
                reason=args.reason,
                actor=actor,
            )
        print(
            f"batch {done.batch_id} of {done.gateway_id}/{done.boot_id} (seq {done.first_seq}"
            f"..{done.last_seq}, {done.record_count} records) set aside; the stream goes on"
        )
        return 0

    try:
        return asyncio.run(run())
    except StreamAdminError as err:
        print(str(err), file=sys.stderr)
        return 1
