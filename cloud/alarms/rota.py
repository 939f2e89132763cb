"""On-call rotas: who is on call at an instant, with hand-overs in the site's time zone (pure).

A rota hands over at a local wall-clock time (``handover``) every ``shift_days`` days, going
through ``members`` in order from ``start_date``. Hand-overs follow the site's clock across
daylight-saving changes: an 08:00 hand-over is at 08:00 local on both sides of the change.
Overrides (a swap, a sick day) win over the cycle while they last.

>>> from datetime import UTC, date, datetime, time
>>> from zoneinfo import ZoneInfo
>>> rota = Rota(members=["ana", "bo"], handover=time(8), shift_days=7, start_date=date(2026, 3, 2))
>>> berlin = ZoneInfo("Europe/Berlin")
>>> on_call(rota, datetime(2026, 3, 9, 6, 59, tzinfo=UTC), berlin)  # 07:59 local, still ana
'ana'
>>> on_call(rota, datetime(2026, 3, 9, 7, 0, tzinfo=UTC), berlin)   # 08:00 local: bo
'bo'
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]


class RotaOverride(BaseModel):
    """``contact`` is on call from ``starts_at`` to ``ends_at`` instead of the cycle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contact: Name
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> RotaOverride:
        if self.ends_at <= self.starts_at:
            raise ValueError("an override must end after it starts")
        return self


class Rota(BaseModel):
    """A cycle of contacts handing over at a local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: Annotated[list[Name], Field(min_length=1, max_length=100)]
    handover: time = time(8)
    """Local wall-clock time of the hand-over, in the site's time zone."""
    shift_days: Annotated[int, Field(ge=1, le=366)] = 7
    start_date: date
    """Local date on which the first member's first shift starts, at ``handover``."""
    overrides: Annotated[list[RotaOverride], Field(max_length=500)] = []

    @model_validator(mode="after")
    def _naive_handover(self) -> Rota:
        if self.handover.tzinfo is not None:
            raise ValueError("handover is a local wall-clock time: give it without an offset")
        return self


def on_call(rota: Rota, at: datetime, tz: ZoneInfo) -> str:
    """The contact on call at ``at`` (aware), judged on the site's wall clock."""
    for override in rota.overrides:
        if override.starts_at <= at < override.ends_at:
            return override.contact
    local = at.astimezone(tz)
    shift_day = local.date()
    if local.time().replace(tzinfo=None) < rota.handover:
        shift_day -= timedelta(days=1)  # before today's hand-over: yesterday's shift goes on
    index = ((shift_day - rota.start_date).days // rota.shift_days) % len(rota.members)
    return rota.members[index]


def next_handover(rota: Rota, at: datetime, tz: ZoneInfo) -> datetime:
    """The first hand-over after ``at`` (aware, in ``tz``), ignoring overrides.

    >>> from datetime import UTC
    >>> rota = Rota(members=["a"], handover=time(8), shift_days=1, start_date=date(2026, 1, 1))
    >>> next_handover(rota, datetime(2026, 1, 1, 9, tzinfo=UTC), ZoneInfo("UTC")).isoformat()
    '2026-01-02T08:00:00+00:00'
    """
    local = at.astimezone(tz)
    day = local.date()
    if local.time().replace(tzinfo=None) >= rota.handover:
        day += timedelta(days=1)
    while (day - rota.start_date).days % rota.shift_days:
        day += timedelta(days=1)
    return datetime.combine(day, rota.handover, tzinfo=tz)
