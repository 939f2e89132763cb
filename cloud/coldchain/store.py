"""Storage of the cold-chain engine: profiles, sensor state, checkpoints, excursions.

Every function works inside the caller's transaction (the processor's, or an API handler's)
and never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from cloud.coldchain import CheckpointError, ProfileError
from cloud.coldchain.anomaly import SensorModels
from cloud.coldchain.excursions import ExcursionEvent, SensorState, open_excursions
from cloud.coldchain.profiles import StorageProfile
from protocols.records import MAX_CLOCK_AHEAD

PROFILE_COLUMNS = (
    "profile_id, name, action_low, action_high, alert_low, alert_high, on_delay, off_delay,"
    " deadband, freeze_damage, freeze_threshold, silence_after, mkt_window, mkt_limit"
)
_FIELDS = [c.strip() for c in PROFILE_COLUMNS.split(",")]


def profile_from_row(row: Sequence[Any]) -> StorageProfile:
    """A profile from a row of ``PROFILE_COLUMNS`` (refused loudly when the row is invalid)."""
    try:
        return StorageProfile.model_validate(dict(zip(_FIELDS, row, strict=True)))
    except ValidationError as err:
        raise ProfileError(f"stored profile {row[0]!r} is invalid: {err}") from err


async def list_profiles(conn: AsyncConnection[TupleRow]) -> list[tuple[StorageProfile, bool]]:
    """Every profile and whether it is a standard one."""
    cur = await conn.execute(
        f"SELECT {PROFILE_COLUMNS}, standard FROM storage_profiles ORDER BY profile_id"
    )
    return [(profile_from_row(row[:-1]), bool(row[-1])) for row in await cur.fetchall()]


async def upsert_custom_profile(conn: AsyncConnection[TupleRow], p: StorageProfile) -> bool:
    """Creates or updates a custom profile; False when ``p`` names a standard profile."""
    values = [getattr(p, f) for f in _FIELDS]
    cur = await conn.execute(
        f"INSERT INTO storage_profiles ({PROFILE_COLUMNS}) VALUES"
        f" ({', '.join(['%s'] * len(_FIELDS))})"
        " ON CONFLICT (profile_id) DO UPDATE SET "
        + ", ".join(f"{f} = EXCLUDED.{f}" for f in _FIELDS[1:])
        + " WHERE NOT storage_profiles.standard RETURNING profile_id",
        values,
    )
    return await cur.fetchone() is not None


@dataclass(frozen=True)
class SensorContext:
    """Where a sensor is mounted and the profile that judges it."""

    sensor_id: str
    location_id: str
    profile: StorageProfile


async def sensor_contexts(
    conn: AsyncConnection[TupleRow], sensor_ids: Sequence[str]
) -> dict[str, SensorContext]:
    """Sensors with a location that has a profile (others are not judged)."""
    cols = ", ".join(f"p.{c}" for c in _FIELDS)
    cur = await conn.execute(
        f"SELECT u.sid, l.location_id, {cols} FROM unnest(%s::text[]) AS u(sid)"
        " LEFT JOIN sensors s ON s.sensor_id = u.sid"
        " LEFT JOIN devices d ON d.device_id = u.sid"
        " JOIN locations l ON l.location_id = coalesce(s.location_id, d.location_id)"
        " JOIN storage_profiles p ON p.profile_id = l.profile_id",
        (list(sensor_ids),),
    )
    return {
        str(row[0]): SensorContext(str(row[0]), str(row[1]), profile_from_row(row[2:]))
        for row in await cur.fetchall()
    }


@dataclass
class StoredState:
    state: SensorState
    models: SensorModels
    gateway_id: str | None


def _state(raw: object) -> SensorState:
    try:
        return SensorState.model_validate(raw)
    except ValidationError as err:
        raise CheckpointError(f"sensor state cannot be read: {err}") from err


async def load_states(
    conn: AsyncConnection[TupleRow], sensor_ids: Sequence[str]
) -> dict[str, StoredState]:
    """The sensors' states, locked until the transaction ends."""
    cur = await conn.execute(
        "SELECT sensor_id, state, models, gateway_id FROM coldchain_sensor_state"
        " WHERE sensor_id = ANY(%s) ORDER BY sensor_id FOR UPDATE",
        (list(sensor_ids),),
    )
    out: dict[str, StoredState] = {}
    for sid, state, models, gateway in await cur.fetchall():
        restored = SensorModels.loads(bytes(models)) if models is not None else SensorModels()
        out[str(sid)] = StoredState(_state(state), restored, gateway)
    return out


async def save_state(conn: AsyncConnection[TupleRow], sensor_id: str, stored: StoredState) -> None:
    await conn.execute(
        "INSERT INTO coldchain_sensor_state (sensor_id, gateway_id, last_time, state, models)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sensor_id) DO UPDATE SET"
        " gateway_id = EXCLUDED.gateway_id, last_time = EXCLUDED.last_time,"
        " state = EXCLUDED.state, models = EXCLUDED.models, updated_at = now()",
        (
            sensor_id,
            stored.gateway_id,
            stored.state.last_time,
            Jsonb(stored.state.model_dump(mode="json")),
            stored.models.dumps(),
        ),
    )


async def checkpoint_before(
    conn: AsyncConnection[TupleRow], sensor_id: str, t: datetime
) -> tuple[datetime, SensorState] | None:
    """The newest checkpoint strictly before reading time ``t``."""
    cur = await conn.execute(
        "SELECT as_of, state FROM coldchain_checkpoints WHERE sensor_id = %s AND as_of < %s"
        " ORDER BY as_of DESC LIMIT 1",
        (sensor_id, t),
    )
    row = await cur.fetchone()
    return None if row is None else (row[0], _state(row[1]))


async def save_checkpoint(
    conn: AsyncConnection[TupleRow],
    sensor_id: str,
    state: SensorState,
    every: timedelta,
    keep: timedelta,
) -> None:
    """Checkpoints ``state`` when the newest checkpoint is older than ``every`` (reading time).

    Checkpoints older than ``keep`` before it are dropped: late data older than that is stored
    but replayed from an empty state ``replay_lookback`` before it.
    """
    if state.last_time is None:
        return
    await conn.execute(
        "DELETE FROM coldchain_checkpoints WHERE sensor_id = %s AND as_of < %s",
        (sensor_id, state.last_time - keep),
    )
    await conn.execute(
        "INSERT INTO coldchain_checkpoints (sensor_id, as_of, state)"
        " SELECT %(s)s, %(t)s, %(state)s WHERE NOT EXISTS (SELECT 1 FROM coldchain_checkpoints"
        "  WHERE sensor_id = %(s)s AND as_of > %(t)s - %(every)s)",
        {
            "s": sensor_id,
            "t": state.last_time,
            "state": Jsonb(state.model_dump(mode="json")),
            "every": every,
        },
    )


async def drop_checkpoints_after(
    conn: AsyncConnection[TupleRow], sensor_id: str, t: datetime | None
) -> None:
    """Forgets checkpoints a replay from ``t`` makes stale."""
    await conn.execute(
        "DELETE FROM coldchain_checkpoints WHERE sensor_id = %s"
        " AND (%s::timestamptz IS NULL OR as_of > %s)",
        (sensor_id, t, t),
    )


async def readings_between(
    conn: AsyncConnection[TupleRow], sensor_id: str, after: datetime, until: datetime | None
) -> list[tuple[datetime, float]]:
    """The sensor's usable temperature readings in ``(after, until]``, one per time."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (time) time, value FROM readings WHERE sensor_id = %s"
        " AND time > %s AND (%s::timestamptz IS NULL OR time <= %s) AND value IS NOT NULL"
        " AND quality <> 'bad' AND unit = 'degC'"
        # protocols.records.clock_ahead: a future-stamped reading is stored, not judged, against
        # the gateway's receipt or the cloud's (stored_at), whichever is earlier
        " AND time <= least(received_at, stored_at) + %s ORDER BY time, seq",
        (sensor_id, after, until, until, MAX_CLOCK_AHEAD),
    )
    return [(row[0], float(row[1])) for row in await cur.fetchall()]


async def apply_event(
    conn: AsyncConnection[TupleRow], ctx: SensorContext, event: ExcursionEvent
) -> tuple[int, bool]:
    """Writes one event; returns the excursion id and whether it changed the excursion.

    Idempotent: a replayed event finds its excursion by (sensor, kind, first breaching reading)
    and changes nothing, so its alert and quarantine are not repeated; a replay that reaches a
    higher level than recorded does raise it.
    """
    cur = await conn.execute(
        "SELECT excursion_id, level, ended_at FROM excursions WHERE sensor_id = %s AND kind = %s"
        " AND started_at = %s FOR UPDATE",
        (ctx.sensor_id, event.kind, event.started_at),
    )
    row = await cur.fetchone()
    if row is None:
        if event.action != "open":
            raise CheckpointError(
                f"{event.action} of a {event.kind} excursion of {ctx.sensor_id} started at"
                f" {event.started_at.isoformat()} that was never opened"
            )
        return await _insert(conn, ctx, event), True
    excursion_id, level, ended_at = int(row[0]), str(row[1]), row[2]
    new_level = "action" if "action" in (level, event.level) else "alert"
    if event.action == "close":
        changed = ended_at != event.ended_at
        new_end = event.ended_at
    else:
        changed = new_level != level or ended_at is not None
        new_end = None
    if changed:
        await conn.execute(
            "UPDATE excursions SET level = %s, ended_at = %s, frozen = frozen OR %s,"
            " escalated_at = CASE WHEN %s AND escalated_at IS NULL THEN %s ELSE escalated_at END,"
            " peak_value = coalesce(%s, peak_value), updated_at = now()"
            " WHERE excursion_id = %s",
            (new_level, new_end, event.freeze, new_level != level, event.at, event.peak_value,
             excursion_id),
        )  # fmt: skip
    return excursion_id, changed


async def _insert(conn: AsyncConnection[TupleRow], ctx: SensorContext, e: ExcursionEvent) -> int:
    cur = await conn.execute(
        "INSERT INTO excursions (location_id, sensor_id, kind, level, started_at, confirmed_at,"
        " peak_value, frozen, profile_id, escalated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING excursion_id",
        (ctx.location_id, ctx.sensor_id, e.kind, e.level, e.started_at, e.at, e.peak_value,
         e.freeze, ctx.profile.profile_id, e.at if e.level == "action" else None),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def sync_open(conn: AsyncConnection[TupleRow], sensor_id: str, state: SensorState) -> None:
    """Keeps the peaks of open excursions current, for the API."""
    for kind, _level, started, peak in open_excursions(state):
        if peak is not None:
            await conn.execute(
                "UPDATE excursions SET peak_value = %s, updated_at = now() WHERE sensor_id = %s"
                " AND kind = %s AND started_at = %s AND peak_value IS DISTINCT FROM %s",
                (peak, sensor_id, kind, started, peak),
            )


async def close_unconfirmed(
    conn: AsyncConnection[TupleRow], sensor_id: str, since: datetime, state: SensorState
) -> int:
    """After a replay: closes open excursions the late data no longer supports.

    They are closed (at the replay's last reading), never deleted: a recorded excursion and
    the quarantine it caused stay for a person to judge.
    """
    keep = [(kind, started) for kind, _l, started, _p in open_excursions(state)]
    cur = await conn.execute(
        "UPDATE excursions SET ended_at = %s, updated_at = now(),"
        ' detail = detail || \'{"closed_by": "late data"}\'::jsonb'
        " WHERE sensor_id = %s AND ended_at IS NULL AND started_at >= %s"
        " AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::timestamptz[]) AS k(kind, s)"
        "  WHERE k.kind = excursions.kind AND k.s = excursions.started_at)",
        (state.last_time, sensor_id, since, [k for k, _ in keep], [s for _, s in keep]),
    )
    return cur.rowcount
