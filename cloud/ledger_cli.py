"""``coldtrace ledger verify|head|keygen`` and ``coldtrace users add|list|token|disable``.

The database is ``--database-url`` or ``$COLDTRACE_CLOUD_DATABASE_URL``
(``coldtrace services status`` prints the private development cluster's URL).

``ledger verify`` exits 0 when intact, 2 when the ledger cannot be read (no connection, no
privilege, not migrated, an anchors file missing) and 3 when it finds tampering: a changed,
unlinked, unsigned or wrongly signed entry (the first is named), balances, unit places or lot
statuses that differ from the entries, a removed tail, or guards (triggers, privileges) not in
place. The service's public key comes from ``--public-key`` or, where the service's own key is
configured (``COLDTRACE_CLOUD_LEDGER__SIGNING_KEY_FILE`` / ``..._SIGNING_KEY``), from it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import psycopg
from pydantic import ValidationError

from cloud.accounts import cli as accounts_cli
from cloud.auth import AuthError
from cloud.auth.model import Role
from cloud.auth.service import add_user, audit, disable_user, issue_token, list_users
from cloud.ledger.anchoring import Anchor
from cloud.ledger.chain import VerifyReport, head, verify
from cloud.ledger.settings import LedgerSettings
from cloud.ledger.signing import LedgerSigner, SigningKeyError, TrustedKeys, load_public

EXIT_UNREADABLE = 2
EXIT_TAMPERED = 3


def _first_line(err: BaseException) -> str:
    """One line of an error (psycopg adds a hint line), as every coldtrace command reports."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser("ledger", help="the inventory ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    check = ledger_sub.add_parser(
        "verify",
        help="recompute the hash chain, signatures, balances, unit places and lot statuses and"
        " check the guards; exit 3 when tampered, 2 when it cannot read",
    )
    check.add_argument("--database-url")
    check.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="ENTRY_ID:HASH",
        help="a head printed earlier by 'coldtrace ledger head' and kept outside the database",
    )
    check.add_argument(
        "--anchors-file",
        type=Path,
        help="the JSON-lines file of signed heads the service exported (ledger.anchor.file)",
    )
    check.add_argument(
        "--public-key",
        action="append",
        default=[],
        type=Path,
        metavar="PEM_FILE",
        help="a public key of the service's ledger signing key (repeat for rotated keys)",
    )
    check.add_argument(
        "--unsigned-before",
        type=int,
        default=0,
        metavar="ENTRY_ID",
        help="entries before this one were written before signing was configured",
    )
    check.set_defaults(handler=_verify)
    keygen = ledger_sub.add_parser(
        "keygen", help="write a new Ed25519 ledger signing key (private PEM, mode 0600) and its"
        " public key",
    )  # fmt: skip
    keygen.add_argument("private_key", type=Path, help="where to write the private key")
    keygen.add_argument("public_key", type=Path, help="where to write the public key")
    keygen.set_defaults(handler=_keygen)
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
    accounts_cli.register(users_sub, _url)


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
    if report.signatures_checked:
        print(f"signatures: {report.signed} signed entries checked against the trusted key(s)")
    else:
        print(
            f"WARNING: signatures NOT checked ({report.signed} signed entries): give"
            " --public-key or configure the service's signing key"
        )
    if report.ok:
        print("ledger intact: hash chain, signatures, head, balances, units, lot statuses and"
              " guards agree")  # fmt: skip
        return
    if report.chain_problem:
        print(f"TAMPERED: first bad entry {report.first_tampered}: {report.chain_problem}")
    if report.head_problem:
        print(f"TAMPERED: {report.head_problem}")
    for problem in report.balance_problems:
        print(f"BALANCE MISMATCH: {problem}")
    for problem in report.derived_problems:
        print(f"DERIVED STATE MISMATCH: {problem}")
    for problem in report.guard_problems:
        print(f"GUARD NOT IN PLACE: {problem}")


def _trusted_keys(files: list[Path]) -> TrustedKeys | None:
    try:
        if files:
            return TrustedKeys.of(*(load_public(path.read_bytes()) for path in files))
        settings = LedgerSettings(
            signing_key_file=os.environ.get("COLDTRACE_CLOUD_LEDGER__SIGNING_KEY_FILE"),
            signing_key=os.environ.get("COLDTRACE_CLOUD_LEDGER__SIGNING_KEY"),
        )
        signer = settings.signer()
    except (OSError, SigningKeyError, ValidationError) as err:
        raise SystemExit(f"cannot read the ledger key: {err}") from err
    return TrustedKeys.of(signer.public_key) if signer is not None else None


def _anchors_from_file(path: Path, keys: TrustedKeys | None) -> tuple[dict[int, bytes], list[str]]:
    """Anchors by entry id, and the records that are malformed or not signed by a trusted key."""
    anchors: dict[int, bytes] = {}
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            anchor = Anchor.from_json(line)
        except ValueError as err:
            problems.append(f"{path}:{number}: {err}")
            continue
        if keys is not None and not anchor.signed_by(keys):
            problems.append(f"{path}:{number}: head {anchor.entry_id} not signed by a trusted key")
            continue
        anchors[anchor.entry_id] = anchor.entry_hash
    return anchors, problems


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
    keys = _trusted_keys(args.public_key)
    anchor_problems: list[str] = []
    if args.anchors_file is not None:
        try:
            kept, anchor_problems = _anchors_from_file(args.anchors_file, keys)
        except OSError as err:
            print(f"cannot read the anchors file: {err}", file=sys.stderr)
            return EXIT_UNREADABLE
        anchors = {**kept, **anchors}

    async def run() -> VerifyReport:
        async with await psycopg.AsyncConnection.connect(_url(args)) as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return await verify(conn, anchors, keys=keys, unsigned_before=args.unsigned_before)

    try:
        report = asyncio.run(run())
    except psycopg.Error as err:
        print(f"cannot read the ledger: {_first_line(err)}", file=sys.stderr)
        return EXIT_UNREADABLE
    _print_report(report)
    for problem in anchor_problems:
        print(f"ANCHOR NOT TRUSTED: {problem}")
    return 0 if report.ok and not anchor_problems else EXIT_TAMPERED


def _keygen(args: argparse.Namespace) -> int:
    signer = LedgerSigner.generate()
    private: Path = args.private_key
    try:
        # O_EXCL: never overwrite a key that may have signed entries already
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(signer.private_pem())
        args.public_key.write_bytes(signer.public_pem())
    except OSError as err:
        print(f"cannot write the key: {err}", file=sys.stderr)
        return 1
    print(f"ledger signing key {signer.key_id}: private {private}, public {args.public_key}")
    return 0


def _head(args: argparse.Namespace) -> int:
    async def run() -> tuple[int | None, bytes]:
        async with await psycopg.AsyncConnection.connect(_url(args)) as conn:
            return await head(conn)

    try:
        entry_id, digest = asyncio.run(run())
    except psycopg.Error as err:
        print(f"cannot read the ledger: {_first_line(err)}", file=sys.stderr)
        return EXIT_UNREADABLE
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
        print(_first_line(err), file=sys.stderr)
        return 1
