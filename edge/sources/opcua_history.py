"""Reading back what an OPC-UA server published while the source was disconnected.

A data-change subscription lives and dies with its session: values the server sampled while the
gateway was away (server restart, network outage, backoff) never arrive as notifications. Where
a variable keeps history (its AccessLevel has the HistoryRead bit, OPC-UA Part 3 §5.6.2), the
source reads the gap back with HistoryRead *ReadRawModifiedDetails* (Part 11 §6.4.3) after it
has re-subscribed, following continuation points up to a bound. Where it does not, or the read
fails, the gap is recorded instead: a ``DeviceStatus`` of the sensor, ``offline`` at the gap's
start with the reason (it never marks the sensor as seen), and ``online`` at the time of the
sensor's next reading. The cloud sees the same silence in the readings
and judges it with its own no-data rule; the statuses say why it happened.

asyncua's ``Node.read_raw_history`` stops after the first page when a value count is given,
hence the loop here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from asyncua import ua
from asyncua.client.client import Client

from protocols.records import DeviceState, DeviceStatus

HISTORY_READ_BIT = 1 << int(ua.AccessLevel.HistoryRead)
_PAGE = 1000  # values per HistoryRead request


@dataclass(frozen=True, slots=True)
class History:
    """The values read back for one node, oldest first; ``complete`` is False when the bound
    was reached before the server ran out of values."""

    values: tuple[ua.DataValue, ...]
    complete: bool


async def read_raw(
    client: Client, node_id: ua.NodeId, start: datetime, end: datetime, limit: int
) -> History:
    """Raw values of ``node_id`` from ``start`` to ``end``, at most ``limit`` of them.

    Raises ``UaStatusCodeError`` (named) when the server refuses the read.
    """
    node = client.get_node(node_id)
    details = ua.ReadRawModifiedDetails(
        IsReadModified=False,
        StartTime=start,
        EndTime=end,
        NumValuesPerNode=ua.UInt32(min(_PAGE, limit)),
        ReturnBounds=False,
    )
    values: list[ua.DataValue] = []
    point: bytes | None = None
    while True:
        result = await node.history_read(details, point)
        result.StatusCode.check()
        values.extend(getattr(result.HistoryData, "DataValues", None) or [])
        previous, point = point, result.ContinuationPoint
        if not point or point == previous:
            return History(tuple(values[:limit]), complete=len(values) <= limit)
        if len(values) >= limit:
            await _release(client, node_id, details, point)
            return History(tuple(values[:limit]), complete=False)


async def _release(
    client: Client, node_id: ua.NodeId, details: ua.ReadRawModifiedDetails, point: bytes
) -> None:
    """Frees a continuation point we will not follow (Part 11 §6.4.3: ReleaseContinuationPoints)."""
    params = ua.HistoryReadParameters(
        HistoryReadDetails=details,
        TimestampsToReturn=ua.TimestampsToReturn.Both,
        ReleaseContinuationPoints=True,
        NodesToRead=[ua.HistoryReadValueId(NodeId=node_id, ContinuationPoint=point)],
    )
    await client.uaclient.history_read(params)


def gap_start(sensor_id: str, start: datetime, end: datetime, reason: str) -> DeviceStatus:
    """The start of a no-data interval that could not be read back, with its reason.

    ``offline`` at ``start`` (the last value seen): it never marks the sensor as seen.

    >>> from datetime import UTC
    >>> t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    >>> s = gap_start("f/t", t0, t1, "no history")
    >>> (s.state.value, s.time == t0, s.detail[:38])
    ('offline', True, 'no data from 2026-01-01T00:00:00+00:00')
    """
    span = f"{start.isoformat()} to {end.isoformat()}"
    detail = f"no data from {span}: values published while disconnected are lost: {reason}"
    return DeviceStatus(
        device_id=sensor_id,
        device_type="sensor",
        state=DeviceState.OFFLINE,
        detail=detail[:2000],
        time=start,
    )


def gap_end(sensor_id: str, start: datetime, end: datetime, at: datetime) -> DeviceStatus:
    """The end of that interval: ``online`` at the time of the sensor's next reading."""
    return DeviceStatus(
        device_id=sensor_id,
        device_type="sensor",
        state=DeviceState.ONLINE,
        detail=f"data again after a gap from {start.isoformat()} to {end.isoformat()}"[:2000],
        time=at,
    )
