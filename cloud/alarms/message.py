"""What a notification says (pure): which unit, what is wrong, what to do (the dashboard's
words, ``cloud.alarms.advice``), since when, the value now and the limits, the lots affected,
and where to acknowledge.

Times are given in the site's time zone and in UTC, since the reader may be anywhere and the
records are in UTC.

>>> from datetime import UTC, datetime
>>> facts = AlarmFacts(alert_id=7, kind="excursion_opened", severity="critical",
...     message="high excursion", at=datetime(2026, 1, 1, 3, tzinfo=UTC), site_name="Main",
...     timezone="Europe/Berlin", location_id="fridge-a", location_name="Vaccine fridge A")
>>> title, body = render(facts)
>>> title
'[CRITICAL] Temperature excursion — Vaccine fridge A'
>>> "Since: 2026-01-01 04:00 CET (03:00 UTC)" in body
True
>>> body.splitlines()[1][:33]
'What to do: Check the unit now: d'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud.alarms.advice import alarm_words
from cloud.alarms.kinds import title_of


@dataclass(frozen=True)
class Limits:
    alert_low: float | None = None
    alert_high: float | None = None
    action_low: float | None = None
    action_high: float | None = None


@dataclass(frozen=True)
class LotLine:
    product: str
    gtin: str
    lot_number: str
    quantity: int
    status: str


@dataclass(frozen=True)
class AlarmFacts:
    """Everything a message needs, gathered by the store for one alert."""

    alert_id: int
    kind: str
    severity: str
    message: str
    at: datetime
    site_name: str
    timezone: str
    location_id: str | None = None
    location_name: str | None = None
    sensor_id: str | None = None
    since: datetime | None = None
    current_value: float | None = None
    current_at: datetime | None = None
    limits: Limits | None = None
    lots: tuple[LotLine, ...] = ()
    ack_url: str | None = None
    page_url: str | None = None
    step: int = 0
    round: int = 0


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(at: datetime, tz_name: str) -> str:
    """``at`` in the site's zone with the UTC time beside it.

    >>> when(datetime(2026, 7, 1, 12, 30, tzinfo=UTC), "America/New_York")
    '2026-07-01 08:30 EDT (12:30 UTC)'
    """
    local = at.astimezone(zone(tz_name))
    utc = at.astimezone(UTC)
    same_day = local.date() == utc.date()
    utc_text = f"{utc:%H:%M} UTC" if same_day else f"{utc:%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({utc_text})"


def limits_text(limits: Limits) -> str:
    """The alert and action ranges.

    >>> limits_text(Limits(3, 7, 2, 8))
    'alert 3 to 7 °C, action 2 to 8 °C'
    """

    def span(low: float | None, high: float | None) -> str:
        lo = "-∞" if low is None else f"{low:g}"
        hi = "+∞" if high is None else f"{high:g}"
        return f"{lo} to {hi} °C"

    parts = []
    if limits.alert_low is not None or limits.alert_high is not None:
        parts.append("alert " + span(limits.alert_low, limits.alert_high))
    if limits.action_low is not None or limits.action_high is not None:
        parts.append("action " + span(limits.action_low, limits.action_high))
    return ", ".join(parts) or "none set"


def render(f: AlarmFacts) -> tuple[str, str]:
    """The title (subject) and the plain-text body of a notification."""
    unit = f.location_name or f.location_id
    title = f"[{f.severity.upper()}] {title_of(f.kind)}" + (f" — {unit}" if unit else "")
    if f.round > 0:
        title += f" (reminder {f.round})"
    lines = [f"What: {f.message}", f"What to do: {alarm_words(f.kind).todo}"]
    if f.location_id is not None:
        where = f"Unit: {f.location_name or f.location_id} ({f.location_id}), site {f.site_name}"
        lines.append(where + (f", sensor {f.sensor_id}" if f.sensor_id else ""))
    else:
        lines.append(f"Site: {f.site_name}")
    lines.append(f"Since: {when(f.since or f.at, f.timezone)}")
    if f.current_value is not None and f.current_at is not None:
        lines.append(f"Now: {f.current_value:.1f} °C at {when(f.current_at, f.timezone)}")
    elif f.sensor_id is not None:
        lines.append("Now: no reading received")
    if f.limits is not None:
        lines.append(f"Limits: {limits_text(f.limits)}")
    if f.lots:
        lines.append(f"Lots affected ({len(f.lots)}):")
        lines.extend(
            f"  - {lot.product} GTIN {lot.gtin} lot {lot.lot_number}: {lot.quantity} units,"
            f" {lot.status}"
            for lot in f.lots
        )
    elif f.location_id is not None:
        lines.append("Lots affected: none stored at this unit")
    if f.ack_url:
        lines.append(f"Acknowledge: {f.ack_url}")
    if f.page_url:
        lines.append(f"Alarm list: {f.page_url}")
    lines.append(f"Alert #{f.alert_id}, severity {f.severity}, step {f.step + 1}")
    return title, "\n".join(lines)
