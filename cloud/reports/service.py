"""Make a report, archive it, hand it out: what the API, the dashboard and the schedules call.

The figures are read in one REPEATABLE READ transaction (one snapshot: the chart, the daily
rows and the excursions agree with each other), printing runs in a worker thread (WeasyPrint
is CPU-bound and would stall the event loop), and the archive row is written afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from psycopg import AsyncConnection, IsolationLevel
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from cloud.reports.archive import Archived, Format, Rendered, store
from cloud.reports.unit_data import unit_record
from cloud.reports.unit_report import render_unit

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]
T = TypeVar("T")


async def snapshot(pool: Pool, read: Callable[[AsyncConnection[TupleRow]], Awaitable[T]]) -> T:
    """``read`` inside one read-only REPEATABLE READ transaction."""
    async with pool.connection() as conn:
        await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
        try:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION READ ONLY")
                return await read(conn)
        finally:
            await conn.set_isolation_level(None)


async def archive(pool: Pool, rendered: Rendered, *, created_by: str) -> Archived:
    async with pool.connection() as conn, conn.transaction():
        return await store(conn, rendered, created_by=created_by)


async def unit_report(
    pool: Pool,
    location_id: str,
    *,
    start: datetime,
    end: datetime,
    fmt: Format,
    created_by: str,
    default_silence: timedelta,
) -> tuple[Archived, bytes]:
    """The unit's temperature record over [start, end), archived; raises ``ReportInputError``."""

    record = await snapshot(pool, lambda c: unit_record(
        c, location_id, start=start, end=end, default_silence=default_silence))  # fmt: skip
    rendered = await asyncio.to_thread(render_unit, record, fmt, generated=datetime.now(UTC))
    return await archive(pool, rendered, created_by=created_by), rendered.content


R = TypeVar("R")


async def make(
    pool: Pool,
    gather: Callable[[AsyncConnection[TupleRow]], Awaitable[R]],
    render: Callable[[R], Rendered],
    *,
    created_by: str,
) -> tuple[Archived, bytes]:
    """Gathers the figures in one snapshot, renders them in a worker thread, archives them."""
    figures = await snapshot(pool, gather)
    rendered = await asyncio.to_thread(render, figures)
    return await archive(pool, rendered, created_by=created_by), rendered.content
