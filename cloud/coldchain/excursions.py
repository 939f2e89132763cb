"""The per-sensor excursion state machine, driven by reading time (never arrival time).

Feed readings of one sensor in time order; each call returns the new state and the events it
caused. The state is a small frozen value that the processor checkpoints as JSON with the batch
mark, so a replay after a crash or a late backlog re-runs exactly the same decisions.

Lifecycle of one side (high or low) of one sensor, with the profile's semantics (see
``profiles``)::

    in range ──breach ≥ on-delay──► OPEN (alert) ──action breach ≥ on-delay──► OPEN (action)
       ▲                                │                                        │
       └──── back inside by deadband ───┴──── for ≥ off-delay (ended_at = first ─┘
                                                recovered reading's time)

``no_data`` is its own condition: a gap between two readings longer than ``silence_after`` (or a
scheduled check finding the last reading too old) opens it, starting at the last reading; the
next reading closes it. A breach run is carried across a gap: silence never reads as in range.

>>> from datetime import datetime, timedelta, UTC
>>> from cloud.coldchain.profiles import STANDARD_PROFILES
>>> p = STANDARD_PROFILES["std-refrigerated"]  # on-delay 15 min
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> temps = [5.0, 9.0, 9.0, 9.0, 9.0]  # one reading every 5 minutes
>>> state, events = run(p, SensorState(), [(t0 + timedelta(minutes=5 * i), v)
...                                         for i, v in enumerate(temps)])
>>> [(e.action, e.kind, e.level, e.started_at.minute) for e in events]
[('open', 'high', 'action', 5)]
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cloud.coldchain.profiles import SIDES, Level, Side, StorageProfile

Kind = Literal["high", "low", "no_data"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SideState(_Frozen):
    """One side's breach clocks and its open excursion, if any."""

    alert_since: datetime | None = None
    action_since: datetime | None = None
    open_started: datetime | None = None
    open_level: Level | None = None
    peak: float | None = None
    freeze: bool = False
    recover_since: datetime | None = None


class SensorState(_Frozen):
    """Everything the machine remembers about one sensor (checkpointed as JSON)."""

    last_time: datetime | None = None
    last_value: float | None = None
    high: SideState = SideState()
    low: SideState = SideState()
    no_data_since: datetime | None = None

    def side(self, side: Side) -> SideState:
        return self.high if side == "high" else self.low


class ExcursionEvent(_Frozen):
    """Something the machine decided at reading time ``at``."""

    action: Literal["open", "escalate", "close"]
    kind: Kind
    level: Level
    started_at: datetime
    at: datetime
    ended_at: datetime | None = None
    peak_value: float | None = None
    freeze: bool = False


def _more_extreme(side: Side, a: float | None, b: float) -> float:
    if a is None:
        return b
    return max(a, b) if side == "high" else min(a, b)


def _gap(profile: StorageProfile, state: SensorState, t: datetime) -> list[ExcursionEvent]:
    """The no-data events a reading at ``t`` implies (a gap, or closing an open condition)."""
    events: list[ExcursionEvent] = []
    since = state.no_data_since
    if (
        since is None
        and state.last_time is not None
        and t - state.last_time > profile.silence_after
    ):
        since = state.last_time
        events.append(
            ExcursionEvent(action="open", kind="no_data", level="alert", started_at=since, at=t)
        )
    if since is not None:
        events.append(
            ExcursionEvent(
                action="close", kind="no_data", level="alert", started_at=since, at=t, ended_at=t
            )
        )
    return events


def _advance_side(
    profile: StorageProfile, side: Side, s: SideState, t: datetime, v: float
) -> tuple[SideState, list[ExcursionEvent]]:
    alert = profile.breaches(v, side, "alert")
    action = profile.breaches(v, side, "action")
    frozen = side == "low" and profile.frozen(v)
    alert_since = (s.alert_since or t) if alert or frozen else None
    action_since = (s.action_since or t) if action or frozen else None
    s = s.model_copy(update={"alert_since": alert_since, "action_since": action_since})
    if s.open_started is None:
        return _maybe_open(profile, side, s, t, v, frozen=frozen)
    return _while_open(profile, side, s, t, v, frozen=frozen)


def _matured(profile: StorageProfile, since: datetime | None, t: datetime) -> bool:
    return since is not None and t - since >= profile.on_delay


def _maybe_open(
    profile: StorageProfile, side: Side, s: SideState, t: datetime, v: float, *, frozen: bool
) -> tuple[SideState, list[ExcursionEvent]]:
    if not (frozen or _matured(profile, s.alert_since, t)):
        return s, []
    started = s.alert_since or t
    level: Level = "action" if frozen or _matured(profile, s.action_since, t) else "alert"
    s = s.model_copy(
        update={"open_started": started, "open_level": level, "peak": v, "freeze": frozen}
    )
    event = ExcursionEvent(
        action="open", kind=side, level=level, started_at=started, at=t, peak_value=v, freeze=frozen
    )
    return s, [event]


def _while_open(
    profile: StorageProfile, side: Side, s: SideState, t: datetime, v: float, *, frozen: bool
) -> tuple[SideState, list[ExcursionEvent]]:
    assert s.open_started is not None
    assert s.open_level is not None
    events: list[ExcursionEvent] = []
    s = s.model_copy(update={"peak": _more_extreme(side, s.peak, v), "freeze": s.freeze or frozen})
    if s.open_level == "alert" and (frozen or _matured(profile, s.action_since, t)):
        s = s.model_copy(update={"open_level": "action"})
        events.append(_event("escalate", side, s, t))
    if not profile.recovered(v, side):
        return s.model_copy(update={"recover_since": None}), events
    recover_since = s.recover_since or t
    if t - recover_since < profile.off_delay:
        return s.model_copy(update={"recover_since": recover_since}), events
    events.append(_event("close", side, s, t, ended_at=recover_since))
    return SideState(), events


def _event(
    action: Literal["escalate", "close"],
    side: Side,
    s: SideState,
    t: datetime,
    ended_at: datetime | None = None,
) -> ExcursionEvent:
    assert s.open_started is not None
    assert s.open_level is not None
    return ExcursionEvent(
        action=action,
        kind=side,
        level=s.open_level,
        started_at=s.open_started,
        at=t,
        ended_at=ended_at,
        peak_value=s.peak,
        freeze=s.freeze,
    )


def advance(
    profile: StorageProfile, state: SensorState, t: datetime, value: float
) -> tuple[SensorState, list[ExcursionEvent]]:
    """One reading at time ``t``; a reading not after ``state.last_time`` is ignored.

    >>> from datetime import datetime, UTC
    >>> from cloud.coldchain.profiles import STANDARD_PROFILES
    >>> p = STANDARD_PROFILES["std-refrigerated"]
    >>> s, ev = advance(p, SensorState(), datetime(2026, 1, 1, tzinfo=UTC), -0.5)
    >>> [(e.kind, e.level, e.freeze) for e in ev]  # freezing opens at once, no on-delay
    [('low', 'action', True)]
    """
    if state.last_time is not None and t <= state.last_time:
        return state, []
    events = _gap(profile, state, t)
    sides: dict[str, SideState] = {}
    for side in SIDES:
        sides[side], side_events = _advance_side(profile, side, state.side(side), t, value)
        events.extend(side_events)
    new = SensorState(
        last_time=t, last_value=value, high=sides["high"], low=sides["low"], no_data_since=None
    )
    return new, events


def run(
    profile: StorageProfile, state: SensorState, readings: Iterable[tuple[datetime, float]]
) -> tuple[SensorState, list[ExcursionEvent]]:
    """Feeds ``readings`` (time-ordered ``(time, value)`` pairs) and collects the events."""
    events: list[ExcursionEvent] = []
    for t, value in readings:
        state, new = advance(profile, state, t, value)
        events.extend(new)
    return state, events


def check_silence(
    profile: StorageProfile, state: SensorState, now: datetime
) -> tuple[SensorState, list[ExcursionEvent]]:
    """The scheduled check: opens ``no_data`` when the last reading is older than the silence.

    ``now`` is the processor's view of time (the newest reading time of the sensor's gateway, or
    the clock of the scheduled job); a sensor never seen is not judged here.

    >>> from datetime import datetime, timedelta, UTC
    >>> from cloud.coldchain.profiles import STANDARD_PROFILES
    >>> p, t0 = STANDARD_PROFILES["std-refrigerated"], datetime(2026, 1, 1, tzinfo=UTC)
    >>> s, _ = advance(p, SensorState(), t0, 5.0)
    >>> s, ev = check_silence(p, s, t0 + timedelta(minutes=16))
    >>> (ev[0].action, ev[0].kind, ev[0].started_at == t0, s.no_data_since == t0)
    ('open', 'no_data', True, True)
    """
    if state.last_time is None or state.no_data_since is not None:
        return state, []
    if now - state.last_time <= profile.silence_after:
        return state, []
    event = ExcursionEvent(
        action="open", kind="no_data", level="alert", started_at=state.last_time, at=now
    )
    return state.model_copy(update={"no_data_since": state.last_time}), [event]


def open_excursions(state: SensorState) -> list[tuple[Kind, Level, datetime, float | None]]:
    """The excursions ``state`` holds open: ``(kind, level, started_at, peak)``."""
    found: list[tuple[Kind, Level, datetime, float | None]] = []
    for side in SIDES:
        s = state.side(side)
        if s.open_started is not None and s.open_level is not None:
            found.append((side, s.open_level, s.open_started, s.peak))
    if state.no_data_since is not None:
        found.append(("no_data", "alert", state.no_data_since, None))
    return found
