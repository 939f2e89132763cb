from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from pydantic import ValidationError

from protocols.batch import Batch, Sequenced
from protocols.records import DeadLetter, Quality, Reading, TagRead

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def reading(value: float | None = 4.0, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(sensor_id="f1/t", time=T0, value=value, quality=quality, received_at=T0)


def test_batch_round_trips_through_json() -> None:
    batch = Batch(
        gateway_id="gw-1",
        boot_id=uuid4(),
        sent_at=T0,
        records=[
            Sequenced(seq=7, record=reading()),
            Sequenced(
                seq=8,
                record=TagRead(
                    reader_id="r1",
                    antenna=1,
                    epc="3074257bf7194e4000001a85",
                    rssi=-55.0,
                    first_seen=T0,
                    last_seen=T0,
                    count=3,
                    received_at=T0,
                ),
            ),
            Sequenced(
                seq=9,
                record=DeadLetter(source="mqtt:x", reason="bad json", raw=b"\x00{", received_at=T0),
            ),
        ],
    )
    again = Batch.model_validate_json(batch.model_dump_json())
    assert again == batch
    assert (again.first_seq, again.last_seq) == (7, 9)
    tag = again.records[1].record
    assert isinstance(tag, TagRead)
    assert tag.epc == "3074257BF7194E4000001A85"


def test_gaps_in_sequence_are_refused() -> None:
    with pytest.raises(ValidationError, match="contiguous"):
        Batch(
            gateway_id="gw-1",
            boot_id=uuid4(),
            sent_at=T0,
            records=[Sequenced(seq=1, record=reading()), Sequenced(seq=3, record=reading())],
        )


def test_times_are_normalised_to_utc_and_naive_refused() -> None:
    local = datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    r = Reading(sensor_id="s", time=local, value=1.0, received_at=local)
    assert r.time == T0
    assert r.time.tzinfo is UTC
    with pytest.raises(ValidationError):
        Reading(sensor_id="s", time=datetime(2026, 3, 1), value=1.0, received_at=T0)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_values_are_refused(value: float) -> None:
    with pytest.raises(ValidationError):
        reading(value)


def test_missing_value_only_with_bad_quality() -> None:
    assert reading(None, Quality.BAD).value is None
    with pytest.raises(ValidationError, match="quality 'bad'"):
        reading(None, Quality.GOOD)


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1969-12-31T23:59:59Z"]
)
def test_times_out_of_range_are_validation_errors(text: str) -> None:
    with pytest.raises(ValidationError, match="time"):
        Reading.model_validate(
            {"sensor_id": "s", "time": text, "value": 1.0, "received_at": T0.isoformat()}
        )


def test_a_good_tag_read_is_written_without_quality_as_before_the_field() -> None:
    """Clouds from before ``TagRead.quality`` forbid unknown fields: a good read (a reader with
    a set clock) keeps its old JSON; only an uncertain one carries the field."""
    good = TagRead(reader_id="door-1", antenna=1, epc="E2801160600002054E6A2C41",
                   first_seen=T0, last_seen=T0, received_at=T0)  # fmt: skip
    uncertain = good.model_copy(update={"quality": Quality.UNCERTAIN})
    assert "quality" not in good.model_dump_json()
    assert '"quality":"uncertain"' in uncertain.model_dump_json()
    records = [Sequenced(seq=1, record=good), Sequenced(seq=2, record=uncertain)]
    batch = Batch(gateway_id="gw-1", boot_id=uuid4(), sent_at=T0, records=records)
    again = Batch.model_validate_json(batch.model_dump_json())
    assert [r.record for r in again.records] == [good, uncertain]
