"""Typed records that edge sources produce and the cloud ingests.

Every record is a frozen pydantic model with a ``kind`` discriminator, so a batch can carry a mix
of them and be validated in one pass. Times are aware datetimes (UTC on the wire, RFC 3339).
Device time is kept as the device sent it; ``received_at`` is the gateway's time of receipt.

>>> from datetime import datetime, UTC
>>> r = Reading(sensor_id="fridge-1/t", time=datetime(2026, 1, 1, tzinfo=UTC), value=4.5,
...             received_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
>>> r.quality.value
'good'
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@#+-]{0,127}$"
DeviceId = Annotated[str, Field(pattern=ID_PATTERN)]
"""Identifier of a sensor, reader, door or gateway: 1-128 printable characters, no spaces."""


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _to_utc(value: datetime) -> datetime:
    # Converting a time near datetime.min/max overflows; that must be a validation error
    # (a clear 4xx or dead letter), not an OverflowError escaping as a crash.
    try:
        utc = value.astimezone(UTC)
    except OverflowError as err:
        raise ValueError("time out of range") from err
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(f"time must lie between {EARLIEST.year} and {LATEST.year}")
    return utc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware datetime from 1970 to 9999, normalised to UTC (naive datetimes are refused)."""

_EPC_HEX = re.compile(r"^[0-9A-F]{4,124}$")


def _epc_hex(value: object) -> str:
    if not isinstance(value, str):
        # ValueError, not TypeError: pydantic turns only ValueError into a validation error.
        raise ValueError("EPC must be a hex string")  # noqa: TRY004
    text = value.strip().upper()
    if not _EPC_HEX.fullmatch(text) or len(text) % 4:
        raise ValueError("EPC must be 16-496 bits as hex, a multiple of 16 bits")
    return text


EpcHex = Annotated[str, PlainValidator(_epc_hex)]


def _b64_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return base64.b64decode(value, validate=True)
    raise ValueError("expected bytes or base64 text")


Base64Bytes = Annotated[
    bytes,
    PlainValidator(_b64_bytes),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str),
]


class Quality(StrEnum):
    """Reading quality, after OPC-UA's status code classes."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
"""Largest values of the cloud's integer columns: a count or sequence above them is refused at
validation instead of wrapping silently in a binary COPY."""

ABSOLUTE_ZERO_C = -273.15
MAX_PLAUSIBLE_C = 1000.0
PHYSICAL_RANGE: dict[str, tuple[float, float]] = {
    "degC": (ABSOLUTE_ZERO_C, MAX_PLAUSIBLE_C),
    "percentRH": (0.0, 100.0),
}
"""What each quantity can physically be; a value outside is a broken payload, not a reading.
Edge decoders and cloud ingest refuse the same ranges."""


def implausible(unit: str, value: float | None) -> str | None:
    """Why ``value`` cannot be a measurement of ``unit``, or None.

    >>> implausible("degC", 1e308)
    '1e+308 degC is outside the physical range -273.15..1000'
    >>> implausible("percentRH", 55.0) is None, implausible("degC", None) is None
    (True, True)
    """
    if value is None:
        return None
    low, high = PHYSICAL_RANGE[unit]
    if low <= value <= high:
        return None
    return f"{value:g} {unit} is outside the physical range {low:g}..{high:g}"


class Reading(_Record):
    """One temperature (or other) measurement of one sensor at device time ``time``."""

    kind: Literal["reading"] = "reading"
    sensor_id: DeviceId
    time: UtcDatetime
    value: float | None
    unit: Literal["degC", "percentRH"] = "degC"
    quality: Quality = Quality.GOOD
    received_at: UtcDatetime

    @model_validator(mode="after")
    def _value_when_good(self) -> Reading:
        if self.value is None and self.quality is not Quality.BAD:
            raise ValueError("a reading without a value must have quality 'bad'")
        return self


class TagRead(_Record):
    """An RFID reader's report of one tag on one antenna, aggregated over a report interval."""

    kind: Literal["tag_read"] = "tag_read"
    reader_id: DeviceId
    antenna: Annotated[int, Field(ge=0, le=65535)]
    epc: EpcHex
    rssi: float | None = None
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    count: Annotated[int, Field(ge=1, le=INT4_MAX)] = 1
    quality: Quality = Quality.GOOD
    """``uncertain`` when the times are not the reader's clock: mapped from its uptime (a
    reader whose clock was never set) or, without any timestamp, the receipt time."""
    received_at: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> TagRead:
        if self.last_seen < self.first_seen:
            raise ValueError("last_seen is before first_seen")
        return self

    @model_serializer(mode="wrap")
    def _quality_when_not_good(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # ``quality`` came after the first gateways and clouds, which forbid unknown fields: a
        # good read is written as before, so a new gateway's reads of a set clock still reach
        # a cloud that does not know the field yet.
        out: dict[str, Any] = handler(self)
        if self.quality is Quality.GOOD:
            out.pop("quality", None)
        return out


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"
    UNKNOWN = "unknown"


class PortalPassage(_Record):
    """A dock door's view of one load (pallet) going through it."""

    kind: Literal["portal_passage"] = "portal_passage"
    passage_id: Annotated[str, Field(min_length=1, max_length=128)]
    door_id: DeviceId
    reader_id: DeviceId
    direction: Direction
    started_at: UtcDatetime
    ended_at: UtcDatetime
    epcs: Annotated[tuple[EpcHex, ...], Field(min_length=1, max_length=10_000)]

    @model_validator(mode="after")
    def _ordered(self) -> PortalPassage:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self


class DeviceState(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


MAX_CLOCK_AHEAD = timedelta(minutes=5)
"""How far a device's time may run ahead of the gateway's receipt time and still be trusted."""


def clock_ahead(
    time: datetime, received_at: datetime, cloud_received_at: datetime | None = None
) -> bool:
    """True when a device stamped a record later than it can have been received.

    Such a record is stored as sent, but must not be judged as the newest reading: one reading
    dated in the future would make every real later reading look late and hide silence. The
    cloud judges against the earlier of the gateway's receipt time and its own
    (``cloud_received_at``): a gateway's clock may be wrong, or lie, and a record cannot have
    been received after the cloud had it.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> clock_ahead(t + timedelta(minutes=6), t), clock_ahead(t + timedelta(minutes=4), t)
    (True, False)
    >>> clock_ahead(t + timedelta(days=1), t + timedelta(days=1), cloud_received_at=t)
    True
    """
    if cloud_received_at is not None:
        received_at = min(received_at, cloud_received_at)
    return time > received_at + MAX_CLOCK_AHEAD


class DeviceStatus(_Record):
    """A change or heartbeat of a device's (or the gateway's own) health."""

    kind: Literal["device_status"] = "device_status"
    device_id: DeviceId
    device_type: Literal["llrp_reader", "opcua_server", "mqtt_broker", "sensor", "gateway"]
    state: DeviceState
    detail: Annotated[str, Field(max_length=2000)] = ""
    time: UtcDatetime


class DeadLetter(_Record):
    """Input that could not be turned into a record, kept with its reason and raw bytes."""

    kind: Literal["dead_letter"] = "dead_letter"
    source: Annotated[str, Field(min_length=1, max_length=256)]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    raw: Base64Bytes
    received_at: UtcDatetime


Record = Annotated[
    Reading | TagRead | PortalPassage | DeviceStatus | DeadLetter, Field(discriminator="kind")
]
"""Any record that may travel from the edge to the cloud."""
