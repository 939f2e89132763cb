"""The processor step: excursions, early warnings, anomaly flags and quarantine per batch.

Runs inside the processor's transaction (see ``cloud.processing.steps``): for each sensor in the
batch it loads the sensor's state (locked), feeds the batch's readings in reading-time order,
writes the excursion events, alerts and quarantines they cause, and saves the state. All of it
commits with the batch mark, so a replayed batch changes nothing.

Late data: when a batch holds readings older than the sensor's last processed reading, the rule
state is restored from the newest checkpoint before them and every reading of the sensor since
that checkpoint is re-read from ``readings`` (which already holds the batch) and re-judged in
order. A replay can open, escalate, extend or close excursions retroactively; it never deletes
one (see ``store.close_unconfirmed``). Anomaly models learn in-order readings only.

Mounts: each reading is judged at the location the sensor was mounted at when it was taken
(``cloud.coldchain.mounts``), so a backlog that arrives after a remount is judged where it was
measured; a move closes what was open at the old location and starts the rules afresh.

Silence: a gap between readings opens ``no_data`` on reading time; in addition, every batch is
the processor's view of its gateway's time, so a sensor of the same gateway whose last reading
is older than its silence interval gets ``no_data`` too. ``check_silences`` does the same for
all sensors against a clock, for a scheduled job (a gateway that is silent as a whole).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict

from cloud.coldchain.alerts import AlertKind, NewAlert, Severity, raise_alert
from cloud.coldchain.anomaly import SensorModels
from cloud.coldchain.excursions import (
    ExcursionEvent,
    SensorState,
    check_silence,
    open_excursions,
    run,
)
from cloud.coldchain.forecast import EarlyWarning, WarningParams
from cloud.coldchain.mounts import SensorMounts, load_timelines
from cloud.coldchain.quarantine import quarantine_for
from cloud.coldchain.store import (
    SensorContext,
    StoredState,
    apply_event,
    checkpoint_before,
    close_unconfirmed,
    drop_checkpoints_after,
    load_states,
    readings_between,
    save_checkpoint,
    save_state,
    sensor_contexts,
    sync_open,
)
from cloud.processing.steps import ProcessingBatch
from protocols.records import Quality, Reading, clock_ahead


class ColdChainSettings(BaseModel):
    """Settings of the step; every duration is in time, so one configuration suits loggers of
    any sampling interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warning: WarningParams = WarningParams()
    checkpoint_every: timedelta = timedelta(hours=1)
    checkpoint_retention: timedelta = timedelta(days=30)
    replay_lookback: timedelta = timedelta(days=1)
    actor: str = "coldtrace:coldchain"


Samples = list[tuple[datetime, float]]
Judged = tuple[SensorContext, ExcursionEvent]
"""An event and the mount (location, profile) it happened at."""


def usable(batch: ProcessingBatch) -> dict[str, Samples]:
    """Temperature readings with a value, grouped by sensor, time-ordered, one per time."""
    by_sensor: dict[str, dict[datetime, float]] = defaultdict(dict)
    for item in batch.records:
        r = item.record
        if not isinstance(r, Reading) or r.unit != "degC" or r.value is None:
            continue
        if r.quality is Quality.BAD or clock_ahead(r.time, r.received_at, batch.received_at):
            # A probe clock in the future (against the gateway's receipt or the cloud's,
            # whichever is earlier) is stored, not judged: silence shows it.
            continue
        by_sensor[r.sensor_id].setdefault(r.time, r.value)
    return {s: sorted(v.items()) for s, v in by_sensor.items()}


class ColdChainStep:
    """The ``rules`` + ``anomaly`` step of the processor."""

    def __init__(self, settings: ColdChainSettings | None = None) -> None:
        self._settings = settings or ColdChainSettings()

    @property
    def name(self) -> str:
        return "coldchain"

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None:
        samples = usable(batch)
        if not samples:
            return
        # The newest reading time of the batch is the processor's view of the gateway's time.
        newest = max(s[-1][0] for s in samples.values())
        mounts = await load_timelines(conn, sorted(samples))
        judged = sorted(s for s, m in mounts.items() if m.contexts)
        states = await load_states(conn, judged)
        for sensor_id in judged:
            stored = states.get(sensor_id) or StoredState(SensorState(), SensorModels(), None)
            stored.gateway_id = batch.gateway_id
            await self._sensor(conn, newest, mounts[sensor_id], stored, samples[sensor_id])
        await sweep_silences(conn, newest, gateway_id=batch.gateway_id, skip=set(samples))

    async def _sensor(
        self,
        conn: AsyncConnection[TupleRow],
        newest: datetime,
        mounts: SensorMounts,
        stored: StoredState,
        samples: Samples,
    ) -> None:
        sensor_id = mounts.sensor_id
        last = stored.state.last_time
        replay_from: datetime | None = None
        if last is not None and samples[0][0] <= last:
            replay_from, state, events = await self._replay(conn, mounts, samples[0][0])
        else:
            state, events = await self._run(conn, mounts, stored.state, samples)
        for ctx, event in events:
            await handle_event(conn, ctx, event, actor=self._settings.actor)
        if replay_from is not None:
            await close_unconfirmed(conn, sensor_id, replay_from, state)
        await sync_open(conn, sensor_id, state)
        stored.state = state
        await self._all_models(conn, newest, mounts, stored, samples, last=last)
        await save_state(conn, sensor_id, stored)
        await save_checkpoint(
            conn,
            sensor_id,
            state,
            self._settings.checkpoint_every,
            self._settings.checkpoint_retention,
        )

    async def _replay(
        self, conn: AsyncConnection[TupleRow], mounts: SensorMounts, earliest: datetime
    ) -> tuple[datetime, SensorState, list[Judged]]:
        found = await checkpoint_before(conn, mounts.sensor_id, earliest)
        if found is None:
            start, state = earliest - self._settings.replay_lookback, SensorState()
        else:
            start, state = found
        await drop_checkpoints_after(conn, mounts.sensor_id, start)
        readings = await readings_between(conn, mounts.sensor_id, start, None)
        state, events = await self._run(conn, mounts, state, readings)
        return start, state, events

    async def _run(
        self,
        conn: AsyncConnection[TupleRow],
        mounts: SensorMounts,
        state: SensorState,
        samples: Samples,
    ) -> tuple[SensorState, list[Judged]]:
        """The rules over ``samples``, each run of them at the location the sensor had then.

        Readings taken while the sensor was not mounted at a location with a profile are not
        judged. When the sensor was moved, what the rules held at the old location is closed
        there at its last reading (the sensor no longer watches that unit) and the rules start
        afresh at the new one: a fridge's excursion never continues in another unit.
        """
        judged: list[Judged] = []
        for location, run_samples in mounts.timeline.split(samples):
            ctx = mounts.context(location)
            if ctx is None:
                continue
            was = mounts.at(state.last_time) if state.last_time is not None else None
            if state.last_time is not None and (was is None or was.location_id != location):
                if was is not None:
                    judged.extend((was, e) for e in remount_closes(state))
                state = SensorState()
            state, events = await self._run_at(conn, ctx, state, run_samples)
            judged.extend((ctx, e) for e in events)
        return state, judged

    async def _run_at(
        self,
        conn: AsyncConnection[TupleRow],
        ctx: SensorContext,
        state: SensorState,
        samples: Samples,
    ) -> tuple[SensorState, list[ExcursionEvent]]:
        """The rules over ``samples``, checkpointed every ``checkpoint_every`` of reading time.

        A backlog of many hours often arrives as one batch (and a replay re-reads many hours).
        With a checkpoint only at its end, late data inside that span found no checkpoint before
        it and was replayed from an empty state, which opened an ongoing excursion a second time
        and left the first one open for ever. The last segment's checkpoint is saved by the
        caller, after the state is final.
        """
        every = self._settings.checkpoint_every
        events: list[ExcursionEvent] = []
        start = 0
        for i in range(1, len(samples)):
            if samples[i][0] - samples[start][0] >= every:
                state, new = run(ctx.profile, state, samples[start:i])
                events.extend(new)
                await save_checkpoint(
                    conn, ctx.sensor_id, state, every, self._settings.checkpoint_retention
                )
                start = i
        state, new = run(ctx.profile, state, samples[start:])
        events.extend(new)
        return state, events

    async def _all_models(
        self,
        conn: AsyncConnection[TupleRow],
        newest: datetime,
        mounts: SensorMounts,
        stored: StoredState,
        samples: Samples,
        *,
        last: datetime | None,
    ) -> None:
        """The anomaly models over the batch's readings, at the location of each run; a moved
        sensor's models start afresh (what was usual in one unit says nothing of another)."""
        where = mounts.timeline.at(last) if last is not None else None
        for location, run_samples in mounts.timeline.split(samples):
            ctx = mounts.context(location)
            if ctx is None:
                continue
            if where is not None and where != location:
                stored.models = SensorModels()
            where = location
            await self._models(conn, newest, ctx, stored, run_samples)

    async def _models(
        self,
        conn: AsyncConnection[TupleRow],
        newest: datetime,
        ctx: SensorContext,
        stored: StoredState,
        samples: Samples,
    ) -> None:
        params = self._settings.warning
        for t, value in samples:
            flags, warning = stored.models.observe(t, value, ctx.profile, params)
            for flag in flags:
                await conn.execute(
                    "INSERT INTO anomaly_scores (time, sensor_id, model, score, flagged)"
                    " VALUES (%s, %s, %s, %s, true) ON CONFLICT DO NOTHING",
                    (flag.at, ctx.sensor_id, flag.model, flag.score),
                )
                await raise_alert(conn, _anomaly_alert(ctx, flag.model, flag.at, flag.score))
            # A forecast about a moment long past (deep in a backlog) would warn of nothing.
            if warning is not None and warning.at >= newest - params.horizon:
                await raise_alert(conn, _warning_alert(ctx, warning))


def _anomaly_alert(ctx: SensorContext, model: str, at: datetime, score: float) -> NewAlert:
    what = {
        "door_open": "door-open pattern (sharp rise)",
        "stuck": "sensor looks stuck (its value stopped moving)",
        "level": "readings have left this unit's normal band for the time of day (a fault,"
        " a drifting probe or a changed set point)",
    }.get(model, model)
    return NewAlert(
        kind="anomaly",
        severity="warning" if model != "door_open" else "info",
        at=at,
        message=f"{ctx.sensor_id} at {ctx.location_id}: {what}",
        dedup_key=f"anomaly:{ctx.sensor_id}:{model}:{at.isoformat()}",
        location_id=ctx.location_id,
        sensor_id=ctx.sensor_id,
        detail={"model": model, "score": round(score, 4)},
    )


def _warning_alert(ctx: SensorContext, w: EarlyWarning) -> NewAlert:
    return NewAlert(
        kind="early_warning",
        severity="warning",
        at=w.at,
        message=(
            f"{ctx.location_id}: {w.side} limit {w.limit:g} °C expected in"
            f" {w.minutes:.0f} minutes (now {w.value:.1f} °C)"
        ),
        dedup_key=f"warning:{ctx.sensor_id}:{w.at.isoformat()}",
        location_id=ctx.location_id,
        sensor_id=ctx.sensor_id,
        detail={"side": w.side, "limit": w.limit, "minutes": round(w.minutes, 1)},
    )


def remount_closes(state: SensorState) -> list[ExcursionEvent]:
    """Closes, at the last reading, what ``state`` holds open: the sensor has been moved.

    >>> remount_closes(SensorState())
    []
    """
    if state.last_time is None:
        return []
    return [
        ExcursionEvent(
            action="close",
            kind=kind,
            level=level,
            started_at=started,
            at=state.last_time,
            ended_at=state.last_time,
            peak_value=peak,
        )
        for kind, level, started, peak in open_excursions(state)
    ]


async def handle_event(
    conn: AsyncConnection[TupleRow], ctx: SensorContext, event: ExcursionEvent, *, actor: str
) -> None:
    """Writes an excursion event, its alert, and the quarantine an action level calls for."""
    excursion_id, changed = await apply_event(conn, ctx, event)
    if not changed:
        return
    await raise_alert(conn, _event_alert(ctx, event, excursion_id))
    reaches_action = event.action in ("open", "escalate") and event.level == "action"
    if reaches_action and event.kind != "no_data":
        await quarantine_for(conn, ctx, event, excursion_id, actor=actor)


def _event_alert(ctx: SensorContext, e: ExcursionEvent, excursion_id: int) -> NewAlert:
    kind: AlertKind
    severity: Severity
    if e.kind == "no_data":
        kind, verb = "no_data", "no data" if e.action == "open" else "data again"
    else:
        kinds: dict[str, AlertKind] = {
            "open": "excursion_opened",
            "escalate": "excursion_escalated",
            "close": "excursion_closed",
        }
        kind = kinds[e.action]
        verb = f"{e.level} {e.kind} excursion {e.action}"
    severity = "critical" if e.level == "action" and e.action != "close" else "warning"
    if e.action == "close":
        severity = "info"
    peak = "" if e.peak_value is None else f", peak {e.peak_value:.1f} °C"
    return NewAlert(
        kind=kind,
        severity=severity,
        at=e.at,
        message=f"{ctx.location_id} ({ctx.sensor_id}): {verb} since {e.started_at:%Y-%m-%d %H:%M}Z"
        + peak
        + (" — freezing" if e.freeze else ""),
        dedup_key=f"excursion:{excursion_id}:{e.action}:{e.level}",
        location_id=ctx.location_id,
        sensor_id=ctx.sensor_id,
        excursion_id=excursion_id,
        detail={"kind": e.kind, "level": e.level, "action": e.action},
    )


async def sweep_silences(
    conn: AsyncConnection[TupleRow],
    now: datetime,
    *,
    gateway_id: str | None = None,
    skip: set[str] | None = None,
    actor: str = "coldtrace:coldchain",
) -> int:
    """Opens ``no_data`` for sensors whose last reading is older than their silence at ``now``."""
    cur = await conn.execute(
        "SELECT st.sensor_id FROM coldchain_sensor_state st"
        " LEFT JOIN sensors s ON s.sensor_id = st.sensor_id"
        " LEFT JOIN devices d ON d.device_id = st.sensor_id"
        " JOIN locations l ON l.location_id = coalesce(s.location_id, d.location_id)"
        " JOIN storage_profiles p ON p.profile_id = l.profile_id"
        " WHERE (%s::text IS NULL OR st.gateway_id = %s) AND st.last_time < %s - p.silence_after"
        " AND st.state->>'no_data_since' IS NULL AND NOT (st.sensor_id = ANY(%s))"
        # While its gateway's processing is stalled, a sensor's silence is not "no data": what
        # it sent may be stored and waiting (the stream_stalled alert covers it).
        " AND NOT EXISTS (SELECT 1 FROM processor_streams ps"
        "  WHERE ps.gateway_id = st.gateway_id AND ps.stalled_since IS NOT NULL)"
        " ORDER BY st.sensor_id",
        (gateway_id, gateway_id, now, sorted(skip or ())),
    )
    sensors = [str(row[0]) for row in await cur.fetchall()]
    if not sensors:
        return 0
    contexts = await sensor_contexts(conn, sensors)
    states = await load_states(conn, sorted(contexts))
    opened = 0
    for sensor_id, stored in states.items():
        ctx = contexts[sensor_id]
        stored.state, events = check_silence(ctx.profile, stored.state, now)
        for event in events:
            await handle_event(conn, ctx, event, actor=actor)
            opened += 1
        await save_state(conn, sensor_id, stored)
    return opened


async def check_silences(conn: AsyncConnection[TupleRow], now: datetime) -> int:
    """The scheduled job (``Work`` signature of ``cloud.jobs.scheduler``), in one transaction."""
    async with conn.transaction():
        return await sweep_silences(conn, now)
