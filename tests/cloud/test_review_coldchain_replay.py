"""Review: late data inside a long backlog batch must continue the excursion already open.

A logger's backlog of many hours often arrives as ONE batch; the step used to save a checkpoint
only at the batch's last reading. Late data a little earlier than that then found no checkpoint
before it and was replayed from an empty state ``replay_lookback`` back, which re-opened the
ongoing excursion as a second one and left the first open for ever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.support.coldchain_seed import FRIDGE_B, SENSOR, T0, Site, readings

pytestmark = pytest.mark.integration
M = timedelta(minutes=1)


async def high_excursions(site: Site) -> list[tuple[object, ...]]:
    return await site.rows(
        "SELECT started_at, ended_at, level FROM excursions WHERE kind = 'high' AND sensor_id = %s"
        " ORDER BY started_at",
        SENSOR[FRIDGE_B],
    )


async def test_review_late_reading_inside_a_long_backlog_keeps_one_excursion(site: Site) -> None:
    sensor = SENSOR[FRIDGE_B]
    step = 10 * M
    # 30 hours in one batch: in range for the first hour, then warm for 29 hours.
    backlog = readings(sensor, T0, [5.0] * 6 + [9.0] * 174, step)
    await site.send(backlog)
    before = await high_excursions(site)
    assert [(r[0], r[1], r[2]) for r in before] == [(T0 + 60 * M, None, "action")]
    last: datetime = backlog[-1].time
    # A second probe's reading from an hour before the end: still warm.
    await site.send(readings(sensor, last - 65 * M, [9.0]))
    after = await high_excursions(site)
    assert [(r[0], r[1], r[2]) for r in after] == [(T0 + 60 * M, None, "action")]
    quarantines = await site.rows(
        "SELECT count(*) FROM ledger_entries WHERE movement = 'quarantine'"
    )
    assert quarantines == [(1,)]
