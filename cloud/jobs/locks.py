"""One advisory lock per job name, so two service processes never run the same job at once."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

T = TypeVar("T")

_NAMESPACE = "coldtrace.jobs:"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL advisory locks take a bigint).

    >>> lock_key("retention") == lock_key("retention") != lock_key("rollups")
    True
    """
    digest = hashlib.sha256((_NAMESPACE + name).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def run_exclusive(
    conn: AsyncConnection[TupleRow],
    name: str,
    work: Callable[[AsyncConnection[TupleRow]], Awaitable[T]],
) -> tuple[bool, T | None]:
    """Runs ``work`` if no other session holds the job's lock; ``(False, None)`` otherwise.

    The lock is session-level (the job may commit several transactions) and is released when
    the work ends; if the connection dies, PostgreSQL releases it.
    """
    key = lock_key(name)
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
    row = await cur.fetchone()
    await conn.commit()
    if row is None or not row[0]:
        return (False, None)
    try:
        return (True, await work(conn))
    finally:
        await conn.rollback()  # leave no transaction open around the unlock
        await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        await conn.commit()
