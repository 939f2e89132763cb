"""Signatures in the database (inside the caller's transaction).

The action and its signature share one transaction: ``ledger_mark`` takes the ledger's chain
lock before the action writes, so the entries after the mark are exactly the action's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from cloud.accounts.store import Person
from cloud.signatures.core import (
    Meaning,
    Signature,
    SignedAction,
    canonical,
    check_meaning,
    content_hash,
)

_COLUMNS = (
    "signature_id, user_id, username, printed_name, signed_at, meaning, action, subject,"
    " entry_ids, encode(content_hash, 'hex'), factors"
)


async def ledger_mark(conn: AsyncConnection[TupleRow]) -> int:
    """Takes the ledger's chain lock for the transaction; the id of the last entry so far."""
    cur = await conn.execute("SELECT coalesce(last_entry_id, 0) FROM ledger_head FOR UPDATE")
    row = await cur.fetchone()
    assert row is not None, "ledger_head is missing: the database is not migrated"
    return int(row[0])


async def sign(
    conn: AsyncConnection[TupleRow],
    person: Person,
    *,
    action: SignedAction,
    subject: str,
    meaning: Meaning,
    content: Mapping[str, Any],
    entries_after: int | None,
) -> Signature:
    """Stores the signature of ``person`` on the record: ``content`` and, when
    ``entries_after`` is given, every ledger entry written after that mark."""
    check_meaning(action, meaning)
    entries: list[tuple[int, str]] = []
    if entries_after is not None:
        cur = await conn.execute(
            "SELECT entry_id, encode(entry_hash, 'hex') FROM ledger_entries"
            " WHERE entry_id > %s ORDER BY entry_id",
            (entries_after,),
        )
        entries = [(int(i), str(h)) for i, h in await cur.fetchall()]
    signed_at = datetime.now(UTC)
    # what is stored is what was hashed: the content round-tripped through canonical JSON
    stored: dict[str, Any] = json.loads(canonical(content))
    digest = content_hash(
        stored, [h for _, h in entries],
        signer=(person.user_id, person.user.name, person.printed_name),
        meaning=meaning, signed_at=signed_at,
    )  # fmt: skip
    cur = await conn.execute(
        "INSERT INTO e_signatures (user_id, username, printed_name, signed_at, meaning, action,"
        " subject, entry_ids, content, content_hash, factors)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (person.user_id, person.user.name, person.printed_name, signed_at, meaning.value,
         action.stored, subject, [i for i, _ in entries], Jsonb(stored), digest,
         person.factors),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    return _signature(row)


def _signature(row: Sequence[Any]) -> Signature:
    return Signature(
        signature_id=int(row[0]), user_id=int(row[1]), username=str(row[2]),
        printed_name=str(row[3]), signed_at=row[4], meaning=Meaning(row[5]), action=str(row[6]),
        subject=str(row[7]), entry_ids=tuple(int(i) for i in row[8]), content_hash=str(row[9]),
        factors=str(row[10]),
    )  # fmt: skip


async def signatures_for(
    conn: AsyncConnection[TupleRow], subjects: Sequence[str]
) -> list[Signature]:
    """Every signature on these records (``lot:12``, ``excursion:3``, ``count:7``), oldest
    first. Reports and pages call this."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM e_signatures WHERE subject = ANY(%s)"
        " ORDER BY signed_at, signature_id",
        (list(subjects),),
    )
    return [_signature(r) for r in await cur.fetchall()]


async def signatures_for_entries(
    conn: AsyncConnection[TupleRow], entry_ids: Sequence[int]
) -> dict[int, list[Signature]]:
    """The signatures bound to each of these ledger entries."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM e_signatures WHERE entry_ids && %s::bigint[]"
        " ORDER BY signed_at, signature_id",
        (list(entry_ids),),
    )
    found: dict[int, list[Signature]] = {}
    wanted = set(entry_ids)
    for row in await cur.fetchall():
        sig = _signature(row)
        for entry_id in set(sig.entry_ids) & wanted:
            found.setdefault(entry_id, []).append(sig)
    return found


async def verify(conn: AsyncConnection[TupleRow], signature_id: int) -> bool | None:
    """Recomputes the binding hash from the stored content and the ledger entries' hashes as
    they are now: False when either was changed since signing; None: no such signature."""
    cur = await conn.execute(
        "SELECT s.user_id, s.username, s.printed_name, s.signed_at, s.meaning, s.content,"
        " s.content_hash, (SELECT array_agg(encode(e.entry_hash, 'hex') ORDER BY e.entry_id)"
        "  FROM ledger_entries e WHERE e.entry_id = ANY(s.entry_ids)),"
        " cardinality(s.entry_ids) FROM e_signatures s WHERE s.signature_id = %s",
        (signature_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    user_id, username, printed, signed_at, meaning, content, stored, hashes, wanted = row
    hashes = list(hashes or [])
    if len(hashes) != wanted:
        return False  # an entry it was bound to is gone
    digest = content_hash(
        content, hashes, signer=(int(user_id), str(username), str(printed)),
        meaning=Meaning(meaning), signed_at=signed_at,
    )  # fmt: skip
    return digest == bytes(stored)
