"""What ingest refuses before storing anything: values against physics, times against the
cloud's clock, batches against the number of chunks they would write.

Pure functions over a validated ``Batch`` and the cloud's own time (never the gateway's claims).
A refused record is named by position (``loc = ["records", i, ...]``) in a 422: the edge then
replaces it by a ``DeadLetter`` with the cloud's reason and resends, so every other record of the
batch still arrives (``edge/uplink.py``). A batch refused as a whole for its chunk count names no
record: the edge halves its batches until each fits.

- A value outside the physical range of its quantity (``protocols.records.PHYSICAL_RANGE``) is
  refused: one 1e308 would overflow ``avg`` in every rollup of its hour.
- A record older than ``backlog_horizon`` before the cloud's time is refused: a year-old backlog
  is an archive import, not telemetry, and each day of it is a new chunk.
- A record stamped ahead of the cloud's receipt is stored as sent but never judged
  (``protocols.records.clock_ahead`` with the cloud's receipt time, applied by the processor).
  An operator may also set ``future_horizon`` to refuse records stamped further ahead than that
  (off by default: the device's time is kept, and the chunk bound limits each batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from protocols.batch import Batch, Sequenced
from protocols.records import (
    MAX_CLOCK_AHEAD,
    PortalPassage,
    Reading,
    Record,
    TagRead,
    implausible,
)

Problem = dict[str, object]
_CENTURY = timedelta(days=36_525)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AdmissionSettings(BaseModel):
    """Limits ingest applies per record and per batch (``COLDTRACE_CLOUD_ADMISSION__…``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backlog_horizon: Annotated[timedelta, Field(gt=timedelta(0), le=_CENTURY)] = timedelta(days=365)
    """Records older than this before the cloud's time are refused."""
    future_horizon: Annotated[timedelta, Field(gt=MAX_CLOCK_AHEAD, le=_CENTURY)] | None = None
    """Records stamped further ahead of the cloud's time are refused. None (the default): a
    record stamped ahead, however far, is stored as the device sent it but never judged; the
    chunk bound still limits what one batch can create."""
    max_chunks_per_batch: Annotated[int, Field(ge=1)] = 64
    """Hypertable chunks one batch may write into; above it the batch is refused (422)."""


def _timed(record: Record) -> tuple[str, datetime] | None:
    """The field and time the horizons apply to (the time partitioning column)."""
    if isinstance(record, Reading):
        return "time", record.time
    if isinstance(record, TagRead):
        return "first_seen", record.first_seen
    if isinstance(record, PortalPassage):
        return "started_at", record.started_at
    return None


def record_problems(
    batch: Batch, now: datetime, settings: AdmissionSettings
) -> list[tuple[str, Problem]]:
    """(reason code, 422 detail item) for every record ingest refuses; empty when all pass."""
    oldest = now - settings.backlog_horizon
    ahead = settings.future_horizon
    newest = None if ahead is None else now + ahead
    found: list[tuple[str, Problem]] = []
    for index, item in enumerate(batch.records):
        record = item.record
        if isinstance(record, Reading):
            why = implausible(record.unit, record.value)
            if why is not None:
                found.append(("out_of_range", _problem(index, item, "value", why)))
                continue
        timed = _timed(record)
        if timed is None:
            continue
        field, at = timed
        if at < oldest:
            why = (
                f"{field} {at.isoformat()} is older than the backlog horizon of"
                f" {settings.backlog_horizon} before the cloud's time {now.isoformat()}"
            )
            found.append(("too_old", _problem(index, item, field, why)))
        elif newest is not None and at > newest:
            why = (
                f"{field} {at.isoformat()} is more than {settings.future_horizon} ahead of"
                f" the cloud's time {now.isoformat()}"
            )
            found.append(("too_far_ahead", _problem(index, item, field, why)))
    return found


def _problem(index: int, item: Sequenced, field: str, message: str) -> Problem:
    return {
        "loc": ["records", index, "record", item.record.kind, field],
        "seq": item.seq,
        "msg": message,
        "type": "value_error",
    }


def chunks_touched(times: Sequence[datetime], interval: timedelta) -> int:
    """How many chunks of ``interval`` (aligned on the Unix epoch) ``times`` fall into.

    >>> from datetime import timedelta as d
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> chunks_touched([t, t + d(hours=23), t + d(days=1), t + d(days=40)], d(days=1))
    3
    """
    step = interval // timedelta(microseconds=1)
    return len({((at - _EPOCH) // timedelta(microseconds=1)) // step for at in times})
