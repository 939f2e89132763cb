"""``coldtrace ledger verify|head`` and ``coldtrace users add|list|token|disable``.

The database is ``--database-url`` or ``$COLDTRACE_CLOUD_DATABASE_URL``
(``coldtrace services status`` prints the private development cluster's URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import psycopg

from cloud.auth import AuthError
from cloud.auth.model import Role
from cloud.auth.service import add_user, audit, disable_user, issue_token, list_users
from cloud.ledger.chain import VerifyReport, head, verify

EXIT_TAMPERED = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser("ledger", help="the inventory ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    check = ledger_sub.add_parser(
        "verify", help="recompute the hash chain and the balances; exit 3 when tampered"
    )
    check.add_argument("--database-url")
    check.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="ENTRY_ID:HASH",
        help="a head printed earlier by 'coldtrace ledger head' and kept outside the database",
    )
    check.set_defaults(handler=_verify)
    top = ledger_sub.add_parser(
        "head", help="print the last entry's id and hash (ENTRY_ID:HASH) to keep as an anchor"
    )
    top.add_argument("--database-url")
    top.set_defaults(handler=_head)

    users = sub.add_parser("users", help="API users, roles and tokens")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="create a user and print its API token once")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--reason", default="created from the command line")
    token = users_sub.add_parser("token", help="print a further API token for a user, once")
    token.add_argument("name")
    disable = users_sub.add_parser("disable", help="disable a user (its tokens stop working)")
    disable.add_argument("name")
    disable.add_argument("--reason", default="disabled from the command line")
    listing = users_sub.add_parser("list", help="users and roles")
    for parser in (add, token, disable, listing):
        parser.add_argument("--database-url")
        parser.set_defaults(handler=_users)


def _url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("COLDTRACE_CLOUD_DATABASE_URL")
    if not url:
        raise SystemExit(
            "give --database-url or set COLDTRACE_CLOUD_DATABASE_URL"
            " (coldtrace services status prints the private cluster's URL)"
        )
    return str(url)


def _print_report(report: VerifyReport) -> None:
    print(f"entries checked: {report.entries}")
    if report.ok:
        print("ledger intact: hash chain, head and balances agree")
        return
    if report.chain_problem:
        print(f"TAMPERED: first bad entry {report.first_tampered}: {report.chain_problem}")
    if report.head_problem:
        print(f"TAMPERED: {report.head_problem}")
    for problem in report.balance_problems:
        print(f"BALANCE MISMATCH: {problem}")


def _anchors(values: list[str]) -> dict[int, bytes]:
    anchors: dict[int, bytes] = {}
    for value in values:
        entry, _, digest = value.partition(":")
        try:
            anchors[int(entry)] = bytes.fromhex(digest)
        except ValueError as err:
            raise SystemExit(f"--anchor {value!r}: expected ENTRY_ID:HEX_HASH") from err
    return anchors


def _verify(args: argparse.Namespace) -> int:
    anchors = _anchors(args.anchor)

    async def run() -> VerifyReport:
        async with await psycopg.AsyncConnection.connect(_url(args)) as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return await verify(conn, anchors)

    try:
        report = asyncio.run(run())
    except psycopg.Error as err:
        print(f"cannot read the ledger: {err}", file=sys.stderr)
        return 2
    _print_report(report)
    return 0 if report.ok else EXIT_TAMPERED


def _head(args: argparse.Namespace) -> int:
    async def run() -> tuple[int | None, bytes]:
        async with await psycopg.AsyncConnection.connect(_url(args)) as conn:
            return await head(conn)

    try:
        entry_id, digest = asyncio.run(run())
    except psycopg.Error as err:
        print(f"cannot read the ledger: {err}", file=sys.stderr)
        return 2
    if entry_id is None:
        print("the ledger is empty", file=sys.stderr)
        return 1
    print(f"{entry_id}:{digest.hex()}")
    return 0


def _users(args: argparse.Namespace) -> int:
    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(_url(args)) as conn:
            command = args.users_command
            if command == "list":
                for name, role, enabled in await list_users(conn):
                    print(f"{name}\t{role.value}\t{'enabled' if enabled else 'disabled'}")
                return 0
            if command == "add":
                secret = await add_user(conn, args.name, Role(args.role))
                await audit(conn, actor="cli", action="user.add", subject=f"user:{args.name}",
                            reason=args.reason, detail={"role": args.role})  # fmt: skip
            elif command == "token":
                secret = await issue_token(conn, args.name)
                await audit(conn, actor="cli", action="user.token", subject=f"user:{args.name}",
                            reason="token issued from the command line")  # fmt: skip
            else:
                if not await disable_user(conn, args.name):
                    print(f"no enabled user {args.name!r}", file=sys.stderr)
                    return 1
                await audit(conn, actor="cli", action="user.disable",
                            subject=f"user:{args.name}", reason=args.reason)  # fmt: skip
                await conn.commit()
                return 0
            await conn.commit()
            print(secret)
            print("(the token is shown once; only its hash is kept)", file=sys.stderr)
            return 0

    try:
        return asyncio.run(run())
    except (AuthError, psycopg.Error) as err:
        print(str(err), file=sys.stderr)
        return 1
