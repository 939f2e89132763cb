"""A seeded site with a live excursion, for dashboard tests (HTTP and browser).

Readings go through the real ingest writer and the processor's cold-chain step
(``tests.support.coldchain_seed``), ending two hours of history at the present so that the
dashboard's 24 h view shows them: fridge A warms to 12 °C (an action-level excursion that
quarantines lots a1 and a2), fridge B and the room stay in range.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.storage.database import make_pool
from tests.support.coldchain_seed import FRIDGE_A, FRIDGE_B, ROOM, SENSOR, Site, make_site, readings


@dataclass(frozen=True)
class Seeded:
    site: Site
    tokens: dict[str, str]
    start: datetime

    def span(self) -> dict[str, str]:
        """``start``/``end`` query or body fields covering every seeded reading: from an hour
        before the first to a minute from now."""
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        return {"start": (self.start - timedelta(hours=1)).isoformat(), "end": end.isoformat()}


async def user_tokens(url: str) -> dict[str, str]:
    """One user per role, named after it: viewer, operator, qa."""
    tokens: dict[str, str] = {}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for role in (Role.VIEWER, Role.OPERATOR, Role.QA):
            tokens[role.value] = await add_user(conn, role.value, role)
        await conn.commit()
    return tokens


@asynccontextmanager
async def seeded_site(
    url: str, *, warm: bool = True, ending: timedelta = timedelta(0)
) -> AsyncIterator[Seeded]:
    """The site with 100 minutes of readings up to ``ending`` ago; fridge A out of range when
    ``warm``."""
    async with make_pool(url, max_size=4) as pool:
        site = await make_site(url, pool)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=100) - ending
        fridge_a = [5.0] * 60 + ([12.0] * 40 if warm else [5.0] * 40)
        await site.send(
            readings(SENSOR[FRIDGE_A], start, fridge_a)
            + readings(SENSOR[FRIDGE_B], start, [5.0 + (i % 3) / 10 for i in range(100)])
            + readings(SENSOR[ROOM], start, [21.0] * 100)
        )
        yield Seeded(site, await user_tokens(url), start)


async def overdue_calibration(
    client: httpx.AsyncClient, seeded: Seeded, certificate_ref: str
) -> None:
    """QA records a pass of fridge A's sensor 400 days ago, due yesterday: overdue today."""
    today = datetime.now(UTC).date()
    made = await client.post(
        f"/v1/sensors/{SENSOR[FRIDGE_A]}/calibrations",
        headers={"Authorization": f"Bearer {seeded.tokens['qa']}"},
        json={"calibrated_on": str(today - timedelta(days=400)), "certificate_ref": certificate_ref,
              "result": "pass", "next_due": str(today - timedelta(days=1))},
    )  # fmt: skip
    assert made.status_code == 201, made.text
