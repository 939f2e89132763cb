"""Identifiers in the EPCIS export are well formed: Digital Link values percent-encoded, read
back exactly by the project's GS1 parser, and the whole document checked with a validator that
enforces the ``uri`` and ``date-time`` formats."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

import jsonschema_rs
import pytest

from cloud.epcis.events import (
    Move,
    SensorSummary,
    document,
    events_from_moves,
    identifier,
    lot_class,
    sensor_event,
)
from protocols.gs1.digital_link import parse_digital_link
from protocols.gs1.errors import AiValueError
from tests.support.epcis_rules import EPCIS_DOCUMENT
from tests.support.ledger_seed import GTIN_A

T0 = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
VALIDATOR = jsonschema_rs.Draft202012Validator(EPCIS_DOCUMENT, validate_formats=True)


@pytest.mark.parametrize("lot", ["A/B", "L%1", "A?B", "x&y=z", "+1", "L1", "(10)", "!\"'*,:;<=>"])
def test_lot_values_read_back_exactly(lot: str) -> None:
    uri = lot_class(GTIN_A, lot)
    assert parse_digital_link(uri) == {"01": GTIN_A, "10": lot}
    assert urlsplit(uri).query == ""  # nothing leaked into a query part


@pytest.mark.parametrize("serial", ["A?B", "A/B", "A%1", "1", "a.b-c_d"])
def test_serial_values_read_back_exactly(serial: str) -> None:
    uri = identifier(f"(01){GTIN_A}(21){serial}")
    assert parse_digital_link(uri) == {"01": GTIN_A, "21": serial}
    assert "#" not in uri
    assert "?" not in uri


@pytest.mark.parametrize(("value", "bad"), [("A#1", "#"), ("a b", " "), ("Lé", "é")])
def test_values_outside_gs1_set_82_stay_well_formed_and_distinct(value: str, bad: str) -> None:
    """No GS1 carrier holds them; the URI still decodes to the stored value, and the parser
    names the character instead of reading back a shortened value."""
    uri = identifier(f"(01){GTIN_A}(21){value}")
    last = urlsplit(uri).path.rsplit("/", 1)[1]
    assert unquote(last) == value
    assert urlsplit(uri).fragment == ""
    with pytest.raises(AiValueError, match=repr([bad]).replace("[", r"\[").replace("]", r"\]")):
        parse_digital_link(uri)
    assert identifier(f"(01){GTIN_A}(21)A") != uri


def _move(entry: int, lot: str, epc: str | None, location: str) -> Move:
    return Move(entry, "receive", T0, location, epc, "available", 1, GTIN_A, lot, None,
                "asn:PO 1/2#3", "portal:dock 1")  # fmt: skip


def test_a_document_of_awkward_values_passes_a_format_enforcing_validator() -> None:
    moves = [
        _move(1, "A/B", None, "dock 1"),
        _move(2, "L%1", None, "dock 1"),
        _move(3, "Lot é #1", None, "dock 1"),
        _move(4, "L1", f"(01){GTIN_A}(21)A?B", "dock 1"),
        _move(5, "L1", f"(01){GTIN_A}(21)A#1", "dock 1"),
    ]
    events = events_from_moves(moves)
    summary = SensorSummary("probe 1?#", "fridge %1", T0, T0, 3, 2.0, 5.0, 3.5,
                            ((GTIN_A, "A/B"),))  # fmt: skip
    doc = document([*events, sensor_event(summary)], T0)
    errors = [str(e) for e in VALIDATOR.iter_errors(doc)]
    assert errors == []
    [received] = [e for e in events if e["type"] == "ObjectEvent"]
    assert len(set(received["epcList"])) == 2  # A?B and A#1 are two units, not both "A"
    classes = {q["epcClass"] for q in received["quantityList"]}
    assert f"https://id.gs1.org/01/{GTIN_A}/10/A%2FB" in classes
    assert f"https://id.gs1.org/01/{GTIN_A}/10/L%251" in classes


def test_the_validator_really_checks_formats() -> None:
    good = document(events_from_moves([_move(1, "L1", None, "dock-1")]), T0)
    assert VALIDATOR.is_valid(good)
    broken_uri = document(events_from_moves([_move(1, "L1", None, "dock-1")]), T0)
    broken_uri["epcisBody"]["eventList"][0]["quantityList"][0]["epcClass"] = (
        f"https://id.gs1.org/01/{GTIN_A}/10/L%1"
    )
    assert not VALIDATOR.is_valid(broken_uri)
    broken_time = document(events_from_moves([_move(1, "L1", None, "dock-1")]), T0)
    broken_time["epcisBody"]["eventList"][0]["eventTime"] = "2026-13-45T25:00:00Z"
    assert not VALIDATOR.is_valid(broken_time)
