"""Where a sensor was mounted at each reading's time (``sensor_mounts``, migration 0100).

A logger's backlog that arrives after the sensor was moved must be judged at the location the
sensor had when each reading was taken, against that location's profile. ``Timeline`` is the
pure part: a sensor's mounts in time order, which splits time-ordered readings into runs that
share one mount. ``load_timelines`` reads them, inside the caller's transaction.

A sensor with no recorded mount falls back on its ``devices`` row's location for all time (the
edge may report a device's location without a mount). Before its first recorded mount, and
while unmounted, a sensor's readings are stored but not judged.

>>> from datetime import UTC, datetime
>>> t = lambda h: datetime(2026, 5, 4, h, tzinfo=UTC)
>>> line = Timeline((Mount(None, "fridge-a"), Mount(t(10), "fridge-b")))
>>> [(where, [h.hour for h, _ in run]) for where, run in line.split([(t(9), 4.0), (t(11), 5.0)])]
[('fridge-a', [9]), ('fridge-b', [11])]
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.coldchain.profiles import StorageProfile
from cloud.coldchain.store import PROFILE_COLUMNS, SensorContext, profile_from_row


@dataclass(frozen=True)
class Mount:
    valid_from: datetime | None
    """None: since the beginning of time (``-infinity``)."""
    location_id: str | None
    """None: unmounted from ``valid_from`` on."""


@dataclass(frozen=True)
class Timeline:
    """A sensor's mounts, oldest first (``valid_from`` strictly increasing)."""

    mounts: tuple[Mount, ...]

    def at(self, t: datetime) -> str | None:
        """The location the sensor was mounted at, at ``t`` (None: not mounted).

        >>> from datetime import UTC, datetime
        >>> line = Timeline((Mount(datetime(2026, 1, 1, tzinfo=UTC), "a"),))
        >>> line.at(datetime(2025, 12, 31, tzinfo=UTC)) is None
        True
        >>> line.at(datetime(2026, 2, 1, tzinfo=UTC))
        'a'
        """
        starts = [m.valid_from for m in self.mounts if m.valid_from is not None]
        floor = 1 if self.mounts and self.mounts[0].valid_from is None else 0
        i = bisect.bisect_right(starts, t) + floor - 1
        return self.mounts[i].location_id if i >= 0 else None

    def split(
        self, samples: Sequence[tuple[datetime, float]]
    ) -> list[tuple[str | None, list[tuple[datetime, float]]]]:
        """Time-ordered ``samples`` cut into runs taken at one location each, in order."""
        runs: list[tuple[str | None, list[tuple[datetime, float]]]] = []
        for t, value in samples:
            where = self.at(t)
            if runs and runs[-1][0] == where:
                runs[-1][1].append((t, value))
            else:
                runs.append((where, [(t, value)]))
        return runs


@dataclass(frozen=True)
class SensorMounts:
    """A sensor's timeline and the judging context of every location it names."""

    sensor_id: str
    timeline: Timeline
    contexts: dict[str, SensorContext]
    """Locations with a storage profile; a location without one is not judged."""

    def context(self, location_id: str | None) -> SensorContext | None:
        return None if location_id is None else self.contexts.get(location_id)

    def at(self, t: datetime) -> SensorContext | None:
        return self.context(self.timeline.at(t))


_MOUNTS = """
SELECT u.sid, CASE WHEN isfinite(m.valid_from) THEN m.valid_from END, l.location_id, {cols}
FROM unnest(%s::text[]) AS u(sid)
LEFT JOIN sensor_mounts m ON m.sensor_id = u.sid
LEFT JOIN devices d ON d.device_id = u.sid AND m.sensor_id IS NULL
LEFT JOIN locations l ON l.location_id = coalesce(m.location_id, d.location_id)
LEFT JOIN storage_profiles p ON p.profile_id = l.profile_id
ORDER BY u.sid, m.valid_from
"""
_PROFILE_COUNT = len(PROFILE_COLUMNS.split(","))


async def load_timelines(
    conn: AsyncConnection[TupleRow], sensor_ids: Sequence[str]
) -> dict[str, SensorMounts]:
    """Every given sensor's mount history with the profiles of its locations."""
    cols = ", ".join(f"p.{c.strip()}" for c in PROFILE_COLUMNS.split(","))
    cur = await conn.execute(_MOUNTS.format(cols=cols), (list(sensor_ids),))
    mounts: dict[str, list[Mount]] = defaultdict(list)
    contexts: dict[str, dict[str, SensorContext]] = defaultdict(dict)
    for row in await cur.fetchall():
        # '-infinity' does not fit a datetime: the query reads it as NULL
        sid, start, location = str(row[0]), row[1], row[2]
        mounts[sid].append(Mount(start, None if location is None else str(location)))
        if location is not None and row[3] is not None:
            profile: StorageProfile = profile_from_row(row[3 : 3 + _PROFILE_COUNT])
            contexts[sid][str(location)] = SensorContext(sid, str(location), profile)
    return {
        sid: SensorMounts(sid, Timeline(tuple(line)), contexts[sid]) for sid, line in mounts.items()
    }
