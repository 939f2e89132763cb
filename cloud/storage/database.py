"""The psycopg 3 async connection pool the cloud service shares."""

from __future__ import annotations

from datetime import timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool


async def _configure(conn: AsyncConnection[TupleRow]) -> None:
    # Sessions work in UTC so that timestamptz text and date_trunc agree with the wire format.
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.commit()


def make_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: timedelta = timedelta(seconds=10),
) -> AsyncConnectionPool[AsyncConnection[TupleRow]]:
    """A pool that is not yet open; use ``async with pool:`` or ``await pool.open()``."""
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout.total_seconds(),
        configure=_configure,
        open=False,
        name="coldtrace",
    )
