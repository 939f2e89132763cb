"""The columnar fast path accepts only what the contract accepts, and reads it identically.

Every body below goes through ``columns.decode_readings`` and through the contract's
``body.parse``. Where the fast path answers, its columns must equal the contract's records;
where it declines (None), the contract decides, so its error messages are the ones a gateway
sees. No database: the store side is covered by the ingest tests, which run through both paths.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cloud.ingest import InvalidBatchError
from cloud.ingest.body import parse
from cloud.ingest.columns import ReadingColumns, decode_readings, outside_horizons
from protocols.batch import Batch
from protocols.records import Reading

BOOT = "00000000-0000-0000-0000-000000000001"


def _reading(**override: object) -> dict[str, object]:
    record: dict[str, object] = {
        "kind": "reading",
        "sensor_id": "fridge-1/t",
        "time": "2026-01-01T00:00:00Z",
        "value": 4.5,
        "received_at": "2026-01-01T00:00:01Z",
    }
    record.update(override)
    return {key: value for key, value in record.items() if value is not _DROP}


_DROP = object()


def _body(records: list[dict[str, object]], first: int = 1, **header: object) -> bytes:
    batch: dict[str, object] = {
        "gateway_id": "gw-1",
        "boot_id": BOOT,
        "sent_at": "2026-01-01T00:00:02Z",
        "records": [{"seq": first + i, "record": r} for i, r in enumerate(records)],
    }
    batch.update(header)
    return json.dumps(batch).encode()


def _contract(raw: bytes) -> Batch | None:
    try:
        return parse(raw)
    except InvalidBatchError:
        return None


def _same(cols: ReadingColumns, batch: Batch) -> None:
    records = [item.record for item in batch.records]
    assert all(isinstance(r, Reading) for r in records)
    readings = [r for r in records if isinstance(r, Reading)]
    assert (cols.gateway_id, cols.boot_id, cols.sent_at, cols.outbox) == (
        batch.gateway_id, batch.boot_id, batch.sent_at, batch.outbox,
    )  # fmt: skip
    assert (cols.first_seq, cols.last_seq) == (batch.first_seq, batch.last_seq)
    assert cols.sensor_ids == [r.sensor_id for r in readings]
    assert cols.times == [r.time for r in readings]
    assert cols.received_at == [r.received_at for r in readings]
    assert cols.values == [r.value for r in readings]
    assert cols.units == [r.unit for r in readings]
    assert cols.qualities == [r.quality.value for r in readings]


ACCEPTED = {
    "plain": _body([_reading(), _reading(value=5)]),
    "defaults spelled out": _body([_reading(unit="percentRH", quality="uncertain", value=55.0)]),
    "bad reading without a value": _body([_reading(value=None, quality="bad")]),
    "outbox report": _body([_reading()], outbox={"pending": 3, "oldest_age": "PT5S"}),
    "no outbox report": _body([_reading()], outbox=None),
    "schema version": _body([_reading()], schema_version=1),
    "fractions of a second": _body([_reading(time="2026-01-01T00:00:00.123456Z")]),
    "explicit UTC offset": _body([_reading(time="2026-01-01T00:00:00+00:00")]),
    "a repeated key (the last wins)": _body([_reading()]).replace(
        b'"value": 4.5', b'"value": 4.5, "value": 5.5'
    ),
    "many": _body([_reading(value=i / 10) for i in range(500)], first=10_000),
}

DECLINED = {
    # legal, but left to the contract (it converts or reads them)
    "another offset": _body([_reading(time="2026-01-01T02:00:00+02:00")]),
    "another record kind": _body(
        [
            {
                "kind": "device_status",
                "device_id": "gw-1",
                "device_type": "gateway",
                "state": "online",
                "time": "2026-01-01T00:00:00Z",
            }
        ]
    ),
    # refused by the contract: it names the error
    "missing kind": _body([_reading(kind=_DROP)]),
    "unknown field": _body([_reading(extra=1)]),
    "unknown batch field": _body([_reading()], extra=1),
    "naive time": _body([_reading(time="2026-01-01T00:00:00")]),
    "value missing but good": _body([_reading(value=None)]),
    "value too large for a float": b'{"gateway_id":"gw-1","boot_id":"'
    + BOOT.encode()
    + b'","sent_at":"2026-01-01T00:00:02Z","records":[{"seq":1,"record":{"kind":"reading",'
    b'"sensor_id":"a","time":"2026-01-01T00:00:00Z","value":1e999,'
    b'"received_at":"2026-01-01T00:00:00Z"}}]}',
    "sensor id with a space": _body([_reading(sensor_id="fridge 1")]),
    "sensor id with NUL": _body([_reading(sensor_id="f\x00")]),
    "gateway id with a space": _body([_reading()], gateway_id="gw 1"),
    "gap": _body([_reading(), _reading()]).replace(b'"seq": 2', b'"seq": 3'),
    "seq zero": _body([_reading()], first=0),
    "seq beyond int8": _body([_reading()], first=2**63),
    "value as text": _body([_reading(value="4.5")]),
    "unknown unit": _body([_reading(unit="degF")]),
    "unknown quality": _body([_reading(quality="fine")]),
    "year 10000": _body([_reading(time="9999-12-31T23:00:00Z")]),
    "before 1970": _body([_reading(received_at="1969-12-31T23:59:59Z")]),
    "empty": _body([]),
    "too many": _body([_reading()] * 10_001),
    "schema version 2": _body([_reading()], schema_version=2),
    "bad outbox report": _body([_reading()], outbox={"pending": -1}),
    "not JSON": b"{",
    "not an object": b"[]",
}


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_the_fast_path_reads_what_the_contract_reads(raw: bytes) -> None:
    cols = decode_readings(raw)
    batch = parse(raw)
    assert cols is not None
    _same(cols, batch)


@pytest.mark.parametrize("raw", DECLINED.values(), ids=DECLINED.keys())
def test_the_fast_path_leaves_the_rest_to_the_contract(raw: bytes) -> None:
    assert decode_readings(raw) is None


ODD = [
    "2026-01-01T00:00:00z",
    "2026-01-01t00:00:00Z",
    "2026-01-01 00:00:00Z",
    "2026-01-01T00:00:00.1234567Z",
    "2026-01-01T00:00:60Z",
    "2026-01-01T24:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T00:00Z",
    "20260101T000000Z",
    "2026-01-01T00:00:00-00:00",
    "1767225600",
]


@pytest.mark.parametrize("spelling", ODD)
def test_odd_time_spellings_are_never_read_differently(spelling: str) -> None:
    raw = _body([_reading(time=spelling)])
    cols, batch = decode_readings(raw), _contract(raw)
    if cols is not None:
        assert batch is not None, f"{spelling!r} accepted by the fast path only"
        _same(cols, batch)


def test_a_resent_tail_keeps_the_columns_aligned() -> None:
    cols = decode_readings(_body([_reading(value=i) for i in range(5)], first=10))
    assert cols is not None
    tail = cols.tail(13)
    assert (tail.first_seq, tail.last_seq, tail.values) == (13, 14, [3.0, 4.0])


def test_horizons_match_admission() -> None:
    cols = decode_readings(_body([_reading()]))
    assert cols is not None
    t = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    assert not outside_horizons(cols, t + day, backlog=day, ahead=None)
    assert outside_horizons(cols, t + 2 * day, backlog=day, ahead=None)
    assert outside_horizons(cols, t - day, backlog=day, ahead=timedelta(hours=1))
