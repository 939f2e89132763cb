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
from datetime import datetime, timedelta

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
    client: Client, node_id: ua.NodeId, start: datetime, end: datetime | None, limit: int
) -> History:
    """Raw values of ``node_id`` from ``start`` to ``end``, at most ``limit`` of them.

    ``end`` None reads forward from ``start`` without an end (Part 11 §6.4.3.2: an unspecified
    EndTime with a value count), so a server clock ahead of ours cannot hide values.

    Pages by continuation point. A server that fills a page and returns no continuation point
    (asyncua's does so when NumValuesPerNode cuts the answer short) is asked again from the
    last time it returned, so that a gap is never taken for read when it was only cut.
    Raises ``UaStatusCodeError`` (named) when the server refuses the read.
    """
    node = client.get_node(node_id)
    values: list[ua.DataValue] = []
    details = _details(start, end, min(_PAGE, limit))
    point: bytes | None = None
    while True:
        result = await node.history_read(details, point)
        result.StatusCode.check()
        page = list(getattr(result.HistoryData, "DataValues", None) or [])
        full = len(page) >= int(details.NumValuesPerNode)
        if point is None and values:
            page = [v for v in page if not _seen(v, values)]  # the boundary value again
        values += page
        previous, point = point, result.ContinuationPoint
        if point and point != previous:  # the server has more
            if len(values) >= limit:
                await _release(client, node_id, details, point)
                return History(tuple(values[:limit]), complete=False)
            continue
        if not full:
            return History(tuple(values[:limit]), complete=len(values) <= limit)
        if len(values) >= limit:
            return History(tuple(values[:limit]), complete=False)  # more may follow
        last = values[-1].SourceTimestamp if values else None
        if last is None or last <= details.StartTime:
            return History(tuple(values), complete=False)  # cannot page on: not all read
        details = _details(last, end, min(_PAGE, limit - len(values) + 1))
        point = None


def _details(start: datetime, end: datetime | None, count: int) -> ua.ReadRawModifiedDetails:
    return ua.ReadRawModifiedDetails(
        IsReadModified=False,
        StartTime=start,
        EndTime=ua.get_win_epoch() if end is None else end,  # 1601: "not specified"
        NumValuesPerNode=ua.UInt32(count),
        ReturnBounds=False,
    )


def _seen(value: ua.DataValue, values: list[ua.DataValue]) -> bool:
    """True when ``value`` (same source time, status and value) is among the last read."""
    return any(
        v.SourceTimestamp == value.SourceTimestamp
        and v.StatusCode == value.StatusCode
        and v.Value == value.Value
        for v in values[-_PAGE:]
        if v.SourceTimestamp == value.SourceTimestamp
    )


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


def delivered_until(
    now: datetime, monotonic_now: float, published_at: float | None, interval: timedelta
) -> datetime | None:
    """Until when a lost session handed over every value: its last publish or keep-alive
    (``published_at``, monotonic), less one publishing interval the server may not have
    sampled yet. A steady sensor's last source time can be long before that. None when not
    known: no publish arrived, or the hand-off overflowed and dropped values.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> delivered_until(t, 100.0, 97.5, timedelta(seconds=1)).isoformat()
    '2026-01-01T11:59:56.500000+00:00'
    >>> delivered_until(t, 100.0, None, timedelta(seconds=1)) is None
    True
    """
    if published_at is None:
        return None
    return now - timedelta(seconds=max(0.0, monotonic_now - published_at)) - interval


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
