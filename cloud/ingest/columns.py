"""The fast path for the common batch: readings only, decoded by msgspec straight into columns.

Nearly every batch a gateway sends holds nothing but readings. Validating those through a
pydantic model per record cost most of ingest's time (profiled in ``docs/scaling.md``), so such a
batch is decoded by msgspec into a few plain lists (one per column) and checked a column at a
time. The fast path only ever *accepts*: a body it cannot prove valid (another record kind, an
odd but legal spelling such as a ``+02:00`` offset, or a real error) returns ``None`` and goes
through ``cloud.ingest.body.parse``, the contract's own validation. So every error message stays
the contract's, word for word, and the fast path accepts a subset of what the contract accepts.

>>> raw = (b'{"gateway_id":"gw-1","boot_id":"00000000-0000-0000-0000-000000000001",'
...        b'"sent_at":"2026-01-01T00:00:00Z","records":[{"seq":7,"record":{"kind":"reading",'
...        b'"sensor_id":"f/t","time":"2026-01-01T00:00:00Z","value":4.5,'
...        b'"received_at":"2026-01-01T00:00:01Z"}}]}')
>>> cols = decode_readings(raw)
>>> (cols.first_seq, cols.sensor_ids, cols.values, cols.qualities)
(7, ['f/t'], [4.5], ['good'])
>>> decode_readings(raw.replace(b'"f/t"', b'"f t"')) is None  # the contract names the error
True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import msgspec
from pydantic import ValidationError

from protocols.batch import MAX_RECORDS_PER_BATCH, OutboxReport
from protocols.records import EARLIEST, ID_PATTERN, INT8_MAX, LATEST, PHYSICAL_RANGE

_ID = re.compile(ID_PATTERN)
_NULL = msgspec.Raw(b"null")
_SUB_MICROSECOND = re.compile(rb":\d\d\.\d{7}")
"""A time with more than 6 decimals: msgspec rounds it, the contract truncates."""


class _Reading(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["reading"]  # the contract's discriminator: required on the wire
    sensor_id: str
    time: datetime
    received_at: datetime
    value: float | None
    unit: Literal["degC", "percentRH"] = "degC"
    quality: Literal["good", "uncertain", "bad"] = "good"


class _Sequenced(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    record: _Reading


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    gateway_id: str
    boot_id: UUID
    sent_at: datetime
    records: list[_Sequenced]
    schema_version: Literal[1] = 1
    outbox: msgspec.Raw = _NULL


_DECODER = msgspec.json.Decoder(_Batch)


@dataclass(frozen=True)
class ReadingColumns:
    """A valid readings-only batch, one list per ``readings`` column, in sequence order."""

    gateway_id: str
    boot_id: UUID
    sent_at: datetime
    outbox: OutboxReport | None
    first_seq: int
    sensor_ids: list[str]
    times: list[datetime]
    values: list[float | None]
    units: list[str]
    qualities: list[str]
    received_at: list[datetime]

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.times) - 1

    def tail(self, first_seq: int) -> ReadingColumns:
        """The records from ``first_seq`` on (what a partly resent batch brings that is new)."""
        cut = first_seq - self.first_seq
        return ReadingColumns(
            self.gateway_id, self.boot_id, self.sent_at, self.outbox, first_seq,
            self.sensor_ids[cut:], self.times[cut:], self.values[cut:], self.units[cut:],
            self.qualities[cut:], self.received_at[cut:],
        )  # fmt: skip


def decode_readings(raw: bytes) -> ReadingColumns | None:
    """The batch as columns when it holds only readings and is surely valid, else None."""
    if _SUB_MICROSECOND.search(raw):
        return None
    try:
        wire = _DECODER.decode(raw)
    except msgspec.DecodeError:  # ValidationError is a subclass: anything else the contract says
        return None
    records = wire.records
    outbox = _outbox(wire.outbox)
    if outbox is False or not _header_valid(wire):
        return None
    first = records[0].seq
    readings = [item.record for item in records]
    cols = ReadingColumns(
        wire.gateway_id, wire.boot_id, wire.sent_at, outbox, first,
        [r.sensor_id for r in readings], [r.time for r in readings], [r.value for r in readings],
        [r.unit for r in readings], [r.quality for r in readings],
        [r.received_at for r in readings],
    )  # fmt: skip
    return cols if _valid(cols) else None


def _header_valid(wire: _Batch) -> bool:
    """The batch's own fields, and its sequence numbers contiguous within int8."""
    records = wire.records
    if not 1 <= len(records) <= MAX_RECORDS_PER_BATCH or not _utc_in_range([wire.sent_at]):
        return False
    first = records[0].seq
    if not _ID.fullmatch(wire.gateway_id) or not 1 <= first <= INT8_MAX - len(records) + 1:
        return False
    return [item.seq for item in records] == list(range(first, first + len(records)))


def _outbox(raw: msgspec.Raw) -> OutboxReport | Literal[False] | None:
    """The outbox report through the contract's own model (one per batch); False if invalid."""
    if bytes(raw) == b"null":
        return None
    try:
        return OutboxReport.model_validate_json(bytes(raw))
    except ValidationError:
        return False


def _valid(cols: ReadingColumns) -> bool:
    """The contract's per-record rules, checked a column at a time."""
    if not all(_ID.fullmatch(s) for s in set(cols.sensor_ids)):
        return False
    if not (_utc_in_range(cols.times) and _utc_in_range(cols.received_at)):
        return False
    if None in cols.values:
        # A reading without a value must say it is bad; pydantic names the record that is not.
        pairs = zip(cols.values, cols.qualities, strict=True)
        if any(v is None and q != "bad" for v, q in pairs):
            return False
    # Infinity and NaN are refused (allow_inf_nan=False); msgspec turns 1e999 into inf.
    return all(map(math.isfinite, _present(cols.values)))


def _present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None] if None in values else values  # type: ignore[return-value]


def _utc_in_range(times: list[datetime]) -> bool:
    """All in UTC (a ``Z`` or ``+00:00`` suffix) and within the contract's years. Other offsets
    are legal; the contract's path converts them."""
    if any(t.tzinfo is not UTC for t in times):
        return False
    return min(times) >= EARLIEST and max(times) <= LATEST


def physical_problem(cols: ReadingColumns) -> bool:
    """True when some value lies outside its unit's physical range (admission refuses it)."""
    by_unit: dict[str, list[float]] = {}
    for unit, value in zip(cols.units, cols.values, strict=True):
        if value is not None:
            by_unit.setdefault(unit, []).append(value)
    for unit, values in by_unit.items():
        low, high = PHYSICAL_RANGE[unit]
        if min(values) < low or max(values) > high:
            return True
    return False


def outside_horizons(
    cols: ReadingColumns, now: datetime, backlog: timedelta, ahead: timedelta | None
) -> bool:
    """True when some reading's time lies outside the admission horizons."""
    if min(cols.times) < now - backlog:
        return True
    return ahead is not None and max(cols.times) > now + ahead
