"""The psycopg 3 async connection pools of the cloud service, and bounded waits per kind of work.

Every kind of work (ingest, processor, jobs, read API) runs with its own ``statement_timeout``,
``lock_timeout`` and ``idle_in_transaction_session_timeout``: no query, lock wait or forgotten
transaction can hold a pooled connection for ever. A pool applies one ``Timeouts`` to all its
sessions; work that shares a pool with other work sets its own for one transaction
(``set_timeouts(..., local=True)``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field

Limit = Annotated[timedelta, Field(ge=timedelta(0))]


class Timeouts(BaseModel):
    """Bounded waits of one kind of work; ``timedelta(0)`` switches a bound off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    statement: Limit = timedelta(seconds=30)
    lock: Limit = timedelta(seconds=5)
    idle_in_transaction: Limit = timedelta(seconds=60)


def _ms(span: timedelta) -> str:
    """A PostgreSQL duration in whole milliseconds (at least 1 unless 0, which means off).

    >>> _ms(timedelta(seconds=2)), _ms(timedelta(0)), _ms(timedelta(microseconds=10))
    ('2000ms', '0', '1ms')
    """
    if span <= timedelta(0):
        return "0"
    return f"{max(1, round(span.total_seconds() * 1000))}ms"


async def set_timeouts(conn: AsyncConnection[TupleRow], timeouts: Timeouts, *, local: bool) -> None:
    """Applies ``timeouts`` to the session, or (``local``) to the transaction in progress."""
    await conn.execute(
        "SELECT set_config('statement_timeout', %s, %s), set_config('lock_timeout', %s, %s),"
        " set_config('idle_in_transaction_session_timeout', %s, %s)",
        (
            _ms(timeouts.statement), local,
            _ms(timeouts.lock), local,
            _ms(timeouts.idle_in_transaction), local,
        ),
    )  # fmt: skip


def make_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: timedelta = timedelta(seconds=10),
    timeouts: Timeouts | None = None,
    name: str = "coldtrace",
) -> AsyncConnectionPool[AsyncConnection[TupleRow]]:
    """A pool that is not yet open; use ``async with pool:`` or ``await pool.open()``.

    ``timeouts``: the session bounds of every connection (None: the server's defaults).
    """

    async def configure(conn: AsyncConnection[TupleRow]) -> None:
        # Sessions work in UTC so that timestamptz text and date_trunc agree with the wire format.
        await conn.execute("SET TIME ZONE 'UTC'")
        # No JIT: a query over a year of daily chunks crosses jit_above_cost and then spends
        # seconds compiling (bench/scale.py: 16 s of 20 s for a year of one unit's hours).
        await conn.execute("SET jit = off")
        if timeouts is not None:
            await set_timeouts(conn, timeouts, local=False)
        await conn.commit()

    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout.total_seconds(),
        configure=configure,
        open=False,
        name=name,
    )
