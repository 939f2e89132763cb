"""Escalation policies, contacts and groups as typed documents, and the choice of policy (pure).

A site has any number of policies. The one that routes an alert is the most specific that
applies: scoped to the alert's unit or one of its parents (nearest first), then scoped to the
unit's storage profile, then site-wide. A policy applies when the alert's kind is among its
``kinds`` (all when absent) and its severity is at least ``min_severity``.

>>> site_wide = Policy(steps=[Step(notify=[Target(type="rota", name="on-call")])])
>>> fridges = Policy(profile_id="std-refrigerated",
...                  steps=[Step(notify=[Target(type="group", name="pharmacy")])])
>>> chosen = choose_policy({"site": site_wide, "fridges": fridges}, kind="no_data",
...     severity="warning", locations=["fridge-a", "zone-1"], profile_id="std-refrigerated")
>>> chosen[0]
'fridges'
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.alarms.kinds import Route, Severity, at_least
from cloud.alarms.rota import Name

Wait = Annotated[timedelta, Field(ge=timedelta(minutes=1), le=timedelta(days=7))]


class Target(BaseModel):
    """Who a step notifies: a contact, every member of a group, whoever a rota has on call, or
    a channel as such (a team chat, a siren webhook)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["contact", "group", "rota", "channel"]
    name: Name


class Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    notify: Annotated[list[Target], Field(min_length=1, max_length=50)]
    wait: Wait = timedelta(minutes=15)
    """If nobody acknowledges within this time, the next step follows."""


class QuietHours(BaseModel):
    """Local wall-clock hours (may wrap midnight) in which only critical alarms notify."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @model_validator(mode="after")
    def _sensible(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours need different start and end")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall-clock times: give them without offset")
        return self


class Policy(BaseModel):
    """Ordered steps, repeated until someone acknowledges."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    location_id: Name | None = None
    profile_id: Name | None = None
    kinds: Annotated[list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]], Field(
        min_length=1, max_length=50)] | None = None  # fmt: skip
    min_severity: Severity = "warning"
    steps: Annotated[list[Step], Field(min_length=1, max_length=20)]
    repeat_every: Wait | None = timedelta(minutes=30)
    """After the last step, it is notified again this often until acknowledged."""
    max_rounds: Annotated[int, Field(ge=1, le=1000)] = 48
    quiet_hours: QuietHours | None = None
    routes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")], Route] = {}
    """Per-kind routes overriding ``cloud.alarms.kinds`` (``page``, ``notify``, ``none``)."""

    def applies(self, kind: str, severity: str) -> bool:
        return (self.kinds is None or kind in self.kinds) and at_least(severity, self.min_severity)


class Contact(BaseModel):
    """A person (or a desk) and the channels that reach them, tried all at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    display_name: Annotated[str, Field(min_length=1, max_length=200)]
    channels: Annotated[list[Name], Field(min_length=1, max_length=20)]
    user: Name | None = None
    """The coldtrace user this contact is, if any (for the audit trail of link acknowledgements)."""


class Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    members: Annotated[list[Name], Field(min_length=1, max_length=200)]


def choose_policy(
    policies: dict[str, Policy],
    *,
    kind: str,
    severity: str,
    locations: list[str],
    profile_id: str | None,
) -> tuple[str, Policy] | None:
    """The most specific applicable policy; ``locations`` is the unit then its parents."""
    best: tuple[int, str, Policy] | None = None
    for name, policy in policies.items():
        if not policy.applies(kind, severity):
            continue
        if policy.profile_id is not None and policy.profile_id != profile_id:
            continue
        if policy.location_id is not None:
            if policy.location_id not in locations:
                continue
            rank = locations.index(policy.location_id)
        else:
            rank = 10_000 if policy.profile_id is not None else 20_000
        if best is None or (rank, name) < (best[0], best[1]):
            best = (rank, name, policy)
    return None if best is None else (best[1], best[2])


def quiet_until(quiet: QuietHours | None, at: datetime, tz: ZoneInfo) -> datetime | None:
    """The end of the quiet hours ``at`` falls in, or None when it is not in quiet hours.

    >>> from datetime import UTC
    >>> q = QuietHours(start=time(22), end=time(6))
    >>> quiet_until(q, datetime(2026, 1, 1, 23, tzinfo=UTC), ZoneInfo("UTC")).isoformat()
    '2026-01-02T06:00:00+00:00'
    >>> quiet_until(q, datetime(2026, 1, 1, 12, tzinfo=UTC), ZoneInfo("UTC")) is None
    True
    """
    if quiet is None:
        return None
    local = at.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    wraps = quiet.start > quiet.end
    inside = (quiet.start <= now or now < quiet.end) if wraps else quiet.start <= now < quiet.end
    if not inside:
        return None
    day = local.date()
    if wraps and now >= quiet.start:
        day += timedelta(days=1)
    return datetime.combine(day, quiet.end, tzinfo=tz)
