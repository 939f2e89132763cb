"""Monthly mean kinetic temperature per storage area of a site (USP <1079.2>).

For each location of the site with a storage profile, over the site's calendar month: the MKT
of the month and the worst MKT over any window of the profile's ``mkt_window`` (24 h for
controlled cold, 30 days rolling for controlled room temperature), beside the profile's MKT
limit. The figures come from the unit's history as the dashboard charts it for that range
(``cloud.web.history``: hourly rollups for a month), so the month's MKT is the one the unit
chart shows; hourly means differ from the readings' own MKT by hundredths of a degree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.coldchain.mkt import worst_window_mkt
from cloud.coldchain.series import Segment
from cloud.reports import ReportInputError
from cloud.reports.archive import Format, Rendered
from cloud.reports.document import duration, esc, facts, page_html, table, temp, when
from cloud.reports.output import output
from cloud.web.history import History, Stats, history, unit_info


@dataclass(frozen=True)
class AreaMkt:
    location_id: str
    name: str
    profile_name: str | None
    stats: Stats
    mkt_window: timedelta
    worst_window_mkt: float | None
    mkt_limit: float | None

    @property
    def over_limit(self) -> bool:
        worst = self.worst_window_mkt
        return self.mkt_limit is not None and worst is not None and worst > self.mkt_limit


@dataclass(frozen=True)
class MonthlyMkt:
    site_id: str
    site_name: str
    timezone: str
    month: date
    start: datetime
    end: datetime
    areas: list[AreaMkt]


def month_bounds(month: date, zone: str) -> tuple[datetime, datetime]:
    """The site's calendar month as [start, end) instants.

    >>> [t.isoformat() for t in month_bounds(date(2026, 3, 1), "Europe/Paris")]
    ['2026-03-01T00:00:00+01:00', '2026-04-01T00:00:00+02:00']
    """
    tz = ZoneInfo(zone)
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(first, time(0), tz), datetime.combine(following, time(0), tz)


def hourly_segments(h: History) -> list[Segment]:
    """One segment per bucket at the sample-weighted mean of the unit's sensors."""
    width = {"raw": timedelta(minutes=1), "hourly": timedelta(hours=1),
             "daily": timedelta(days=1)}[h.resolution]  # fmt: skip
    acc: dict[datetime, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in h.series:
        for t, n, mean in zip(s.time, s.samples, s.mean, strict=True):
            if n and mean is not None:
                acc[t][0] += n
                acc[t][1] += n * mean
    return [Segment(t, t + width, a[1] / a[0]) for t, a in sorted(acc.items())]


_SITE_SQL = "SELECT name, timezone FROM sites WHERE site_id = %s"
_AREAS_SQL = """
SELECT l.location_id, p.mkt_window, p.mkt_limit FROM locations l
JOIN storage_profiles p ON p.profile_id = l.profile_id
WHERE l.site_id = %s ORDER BY l.location_id
"""


async def monthly_mkt(
    conn: AsyncConnection[TupleRow],
    site_id: str,
    month: date,
    *,
    now: datetime,
    default_silence: timedelta,
) -> MonthlyMkt:
    cur = await conn.execute(_SITE_SQL, (site_id,))
    site = await cur.fetchone()
    if site is None:
        raise ReportInputError(f"no site {site_id!r}")
    start, end = month_bounds(month, site[1])
    if start > now:
        raise ReportInputError("the month has not begun")
    end = min(end, now)
    cur = await conn.execute(_AREAS_SQL, (site_id,))
    areas = []
    for location_id, window, limit in await cur.fetchall():
        unit = await unit_info(conn, location_id, default_silence=default_silence)
        assert unit is not None
        h = await history(conn, unit, start=start, end=end)
        segments = hourly_segments(h)
        # less than one window of data: the window's MKT is the month's (as in coldchain.mkt)
        short = not segments or segments[-1].end - segments[0].start <= window
        worst = h.stats.mkt if short else worst_window_mkt(segments, window)
        areas.append(AreaMkt(location_id, unit.name, unit.profile_name, h.stats, window,
                             worst, limit))  # fmt: skip
    return MonthlyMkt(site_id, site[0], site[1], month.replace(day=1), start, end, areas)


def mkt_html(r: MonthlyMkt, *, generated: datetime) -> str:
    z = r.timezone
    body = [
        facts([("Site", esc(f"{r.site_name} ({r.site_id})")), ("Month", esc(f"{r.month:%B %Y}")),
               ("Period", esc(f"{when(r.start, z)} to {when(r.end, z)}")),
               ("Method", esc("MKT with ΔH/R = 10 000 K over the hourly means; worst window"
                              " rolling over the profile's window (USP <1079.2>)"))]),
        "<h2>Storage areas</h2>",
        table(["location", "profile", "samples", "min °C", "mean °C", "max °C", "MKT °C",
               "window", "worst window MKT °C", "MKT limit °C", "within"],
              ([esc(f"{a.name} ({a.location_id})"), esc(a.profile_name or ""),
                esc(a.stats.samples), temp(a.stats.low), temp(a.stats.mean), temp(a.stats.high),
                temp(a.stats.mkt), esc(duration(a.mkt_window)), temp(a.worst_window_mkt),
                temp(a.mkt_limit),
                '<span class="bad">no</span>' if a.over_limit else "yes"] for a in r.areas),
              numeric=frozenset({2, 3, 4, 5, 6, 8, 9})),
    ]  # fmt: skip
    return page_html(
        "Monthly MKT per storage area", "".join(body),
        subtitle=f"{r.site_name}, {r.month:%B %Y}", generated=when(generated, "UTC"),
    )  # fmt: skip


def render_mkt(r: MonthlyMkt, fmt: Format, *, generated: datetime) -> Rendered:
    def rows() -> tuple[list[str], list[list[object]]]:
        header = ["location_id", "month", "samples", "min_degC", "mean_degC", "max_degC",
                  "mkt_degC", "mkt_window_s", "worst_window_mkt_degC", "mkt_limit_degC",
                  "over_limit"]  # fmt: skip
        return header, [[a.location_id, r.month, a.stats.samples, a.stats.low, a.stats.mean,
                         a.stats.high, a.stats.mkt, a.mkt_window, a.worst_window_mkt,
                         a.mkt_limit, a.over_limit] for a in r.areas]  # fmt: skip

    return output(
        "mkt", fmt, title=f"Monthly MKT {r.site_name} {r.month:%Y-%m}",
        stem=f"mkt-{r.site_id}-{r.month:%Y-%m}",
        parameters={"site_id": r.site_id, "month": f"{r.month:%Y-%m}"},
        html=lambda: mkt_html(r, generated=generated), table=rows,
    )  # fmt: skip
