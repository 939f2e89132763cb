"""``coldtrace users password|full-name|unlock``: people's accounts from the command line.

The password is read from the terminal without echo (twice), or from standard input with
``--stdin`` for scripts; it never appears as an argument (process lists and shell history show
those). Each change is audited with the actor ``cli``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable

import psycopg

from cloud.accounts import AccountError
from cloud.accounts.sessions import revoke_user_sessions
from cloud.accounts.settings import AccountSettings
from cloud.accounts.store import set_full_name, set_password, unlock
from cloud.auth.service import audit


def register(
    users_sub: argparse._SubParsersAction[argparse.ArgumentParser],
    database_url: Callable[[argparse.Namespace], str],
) -> None:
    """Adds the account commands under ``coldtrace users``; ``database_url`` reads the URL."""
    password = users_sub.add_parser(
        "password", help="set a person's password (asked twice, or --stdin); ends their sessions"
    )
    password.add_argument("name")
    password.add_argument("--stdin", action="store_true", help="read one line from stdin")
    full = users_sub.add_parser("full-name", help="the printed name on a person's signatures")
    full.add_argument("name")
    full.add_argument("full_name")
    unlocking = users_sub.add_parser("unlock", help="end a lock-out after failed sign-ins")
    unlocking.add_argument("name")
    for parser in (password, full, unlocking):
        parser.add_argument("--database-url")
        parser.set_defaults(handler=lambda args: _run(args, database_url(args)))


def _read_password(args: argparse.Namespace) -> str:
    if args.stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"New password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def _run(args: argparse.Namespace, url: str) -> int:
    async def run() -> str:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            command, name = args.users_command, args.name
            if command == "password":
                await set_password(conn, name, _read_password(args), AccountSettings())
                await revoke_user_sessions(conn, name)
                action, done = "account.password_set", f"password of {name} set"
            elif command == "full-name":
                if not await set_full_name(conn, name, args.full_name):
                    raise AccountError(f"no user {name!r}")
                action, done = "account.full_name", f"printed name of {name} set"
            else:
                if not await unlock(conn, name):
                    raise AccountError(f"no user {name!r}")
                action, done = "account.unlock", f"{name} unlocked"
            await audit(conn, actor="cli", action=action, subject=f"user:{name}",
                        reason="from the command line")  # fmt: skip
            await conn.commit()
            return done

    try:
        print(asyncio.run(run()), file=sys.stderr)
    except (AccountError, psycopg.Error) as err:
        print(str(err).splitlines()[0], file=sys.stderr)
        return 1
    return 0
