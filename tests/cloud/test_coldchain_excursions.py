"""The excursion state machine, driven by tables of readings (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from cloud.coldchain.excursions import (
    ExcursionEvent,
    SensorState,
    advance,
    check_silence,
    open_excursions,
    run,
)
from cloud.coldchain.profiles import STANDARD_PROFILES, StorageProfile

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FRIDGE = STANDARD_PROFILES["std-refrigerated"]  # alert 3–7, action 2–8, on 15, off 10, deadband 0.5


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def every(minutes: int, values: list[float], start: float = 0) -> list[tuple[datetime, float]]:
    return [(at(start + i * minutes), v) for i, v in enumerate(values)]


def summary(events: list[ExcursionEvent]) -> list[tuple[str, str, str, float, float | None]]:
    return [
        (
            e.action,
            e.kind,
            e.level,
            (e.started_at - T0).total_seconds() / 60,
            None if e.ended_at is None else (e.ended_at - T0).total_seconds() / 60,
        )
        for e in events
    ]


CASES = [
    pytest.param(every(5, [5, 5, 5, 5]), [], id="in range"),
    pytest.param(every(5, [5, 7.5, 7.5, 7.5, 5]), [], id="alert breach shorter than on-delay"),
    pytest.param(
        every(5, [5, 7.5, 7.5, 7.5, 7.5]),
        [("open", "high", "alert", 5, None)],
        id="alert breach for the on-delay opens at the first breaching reading",
    ),
    pytest.param(
        every(5, [5, 9, 9, 9, 9]), [("open", "high", "action", 5, None)], id="straight to action"
    ),
    pytest.param(
        every(5, [5, 7.5, 7.5, 7.5, 7.5, 9, 9, 9, 9]),
        [("open", "high", "alert", 5, None), ("escalate", "high", "action", 5, None)],
        id="escalates alert to action after the action on-delay",
    ),
    pytest.param(
        every(1, [5, 12, 12, 5, 5, 5]), [], id="door opening within the on-delay does nothing"
    ),
    pytest.param(
        every(5, [5, 7.5, 7.5, 7.5, 7.5, 6.8, 6.8, 6.8, 6.2, 6.2, 6.2]),
        [("open", "high", "alert", 5, None), ("close", "high", "alert", 5, 40)],
        id="deadband: 6.8 is inside the alert limit but not by the deadband",
    ),
    pytest.param(
        every(5, [5, 7.5, 7.5, 7.5, 7.5, 6, 6, 7.5, 6, 6, 6]),
        [("open", "high", "alert", 5, None), ("close", "high", "alert", 5, 40)],
        id="a breach during the off-delay restarts it",
    ),
    pytest.param(
        every(5, [5, 2.5, 2.5, 2.5, 2.5, 1.5, 1.5, 1.5, 1.5, 5, 5, 5]),
        [
            ("open", "low", "alert", 5, None),
            ("escalate", "low", "action", 5, None),
            ("close", "low", "action", 5, 45),
        ],
        id="low side",
    ),
    pytest.param(
        every(5, [5, 7.5, 7.5, 7.5, 7.5, 5, 5, 5, 7.5, 7.5, 7.5, 7.5]),
        [
            ("open", "high", "alert", 5, None),
            ("close", "high", "alert", 5, 25),
            ("open", "high", "alert", 40, None),
        ],
        id="several excursions over time",
    ),
    pytest.param(
        every(5, [5, 8.0, 8.0, 8.0, 8.0]),
        [("open", "high", "alert", 5, None)],
        id="on the action limit is inside it",
    ),
]


@pytest.mark.parametrize(("readings", "expected"), CASES)
def test_state_machine_table(
    readings: list[tuple[datetime, float]], expected: list[tuple[str, str, str, float, float]]
) -> None:
    _, events = run(FRIDGE, SensorState(), readings)
    assert summary(events) == expected


def test_freezing_is_action_at_once_and_kept_through_escalation() -> None:
    state, events = run(FRIDGE, SensorState(), every(5, [5, 2.5, -0.5]))
    assert summary(events) == [("open", "low", "action", 5, None)]
    assert events[0].freeze is True
    assert open_excursions(state) == [("low", "action", at(5), -0.5)]


def test_freeze_flag_off_for_frozen_profile() -> None:
    frozen = STANDARD_PROFILES["std-frozen"]
    _, events = run(frozen, SensorState(), every(5, [-20, -20]))
    assert events == []


def test_gap_longer_than_silence_opens_and_closes_no_data() -> None:
    readings = [(at(0), 5.0), (at(5), 5.0), (at(40), 5.0)]
    _, events = run(FRIDGE, SensorState(), readings)
    assert summary(events) == [
        ("open", "no_data", "alert", 5, None),
        ("close", "no_data", "alert", 5, 40),
    ]


def test_breach_run_is_carried_across_a_gap() -> None:
    # 9 °C before and after a 20-minute silence: the breach lasted, silence is not "in range".
    readings = [(at(0), 5.0), (at(5), 9.0), (at(25), 9.0)]
    _, events = run(FRIDGE, SensorState(), readings)
    assert ("open", "high", "action", 5, None) in summary(events)


def test_scheduled_silence_check_then_reading_closes() -> None:
    state, _ = run(FRIDGE, SensorState(), every(5, [5, 5]))
    same, none = check_silence(FRIDGE, state, at(19))
    assert none == []
    assert same == state
    state, opened = check_silence(FRIDGE, state, at(21))
    assert summary(opened) == [("open", "no_data", "alert", 5, None)]
    again, twice = check_silence(FRIDGE, state, at(60))
    assert twice == []
    _, closed = advance(FRIDGE, again, at(61), 5.0)
    assert summary(closed) == [("close", "no_data", "alert", 5, 61)]


def test_old_or_duplicate_reading_is_ignored() -> None:
    state, _ = run(FRIDGE, SensorState(), every(5, [5, 5]))
    same, events = advance(FRIDGE, state, at(5), 20.0)
    assert (same, events) == (state, [])


def test_state_round_trips_as_json() -> None:
    state, _ = run(FRIDGE, SensorState(), every(5, [5, 7.5, 7.5, 7.5, 7.5, 9]))
    assert SensorState.model_validate_json(state.model_dump_json()) == state


def test_replay_from_a_checkpoint_gives_the_same_events() -> None:
    readings = every(5, [5, 7.5, 7.5, 7.5, 7.5, 9, 9, 9, 9, 5, 5, 5, 5])
    _, all_events = run(FRIDGE, SensorState(), readings)
    mid, first = run(FRIDGE, SensorState(), readings[:6])
    restored = SensorState.model_validate_json(mid.model_dump_json())
    _, rest = run(FRIDGE, restored, readings[6:])
    assert first + rest == all_events


def test_zero_delays_open_and_close_on_single_readings() -> None:
    custom = StorageProfile(
        profile_id="custom-1", name="no delays", action_high=10.0, alert_high=10.0
    )
    _, events = run(custom, SensorState(), every(1, [5, 11, 5]))
    assert summary(events) == [
        ("open", "high", "action", 1, None),
        ("close", "high", "action", 1, 2),
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"action_low": 2.0, "action_high": 8.0, "alert_low": 1.0, "alert_high": 7.0},
        {"action_high": 8.0, "alert_low": 3.0, "alert_high": 7.0},
        {"action_high": 8.0, "alert_high": 7.0, "on_delay": timedelta(minutes=-1)},
        {
            "action_low": 2.0,
            "action_high": 8.0,
            "alert_low": 3.0,
            "alert_high": 7.0,
            "deadband": 2.0,
        },
        {},
    ],
)
def test_inconsistent_profiles_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        StorageProfile.model_validate({"profile_id": "bad", "name": "bad", **fields})


def test_alert_limits_default_to_action_limits() -> None:
    p = StorageProfile(profile_id="legacy", name="action only", action_low=2.0, action_high=8.0)
    assert (p.alert_low, p.alert_high) == (2.0, 8.0)
    _, events = run(p, SensorState(), every(5, [5, 7.9, 8.5]))
    assert summary(events) == [("open", "high", "action", 10, None)]  # no on-delay given


def test_standard_profiles_cover_the_issue() -> None:
    p = STANDARD_PROFILES
    assert (p["std-frozen"].action_low, p["std-frozen"].action_high) == (-25.0, -15.0)
    assert (p["std-ultra-cold"].action_low, p["std-ultra-cold"].action_high) == (-90.0, -60.0)
    crt = p["std-controlled-room"]
    assert (crt.alert_low, crt.alert_high, crt.action_low, crt.action_high) == (20, 25, 15, 30)
    assert crt.mkt_window == timedelta(days=30)
    assert p["std-refrigerated"].mkt_window == timedelta(hours=24)
    assert p["std-refrigerated"].freeze_damage
