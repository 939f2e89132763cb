"""The pure master-data checks: time zones, GTIN-14 check digits, ISO 8601 durations."""

from __future__ import annotations

import doctest
from datetime import timedelta

import pytest

from cloud.masterdata import InvalidMasterDataError, values
from cloud.masterdata.values import parse_duration, valid_gtin14, valid_timezone


def test_docstring_examples_hold() -> None:
    result = doctest.testmod(values, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("PT12H", timedelta(hours=12)),
        ("P14D", timedelta(days=14)),
        ("P2W", timedelta(weeks=2)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT90M", timedelta(minutes=90)),
        ("PT1,5S", timedelta(seconds=1.5)),
        ("PT0S", timedelta(0)),
    ],
)
def test_durations_in_fixed_units_parse(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


# months and years have no fixed length; negatives, numbers and clock times are not ISO 8601
# durations of a budget; the last is longer than any shelf life
@pytest.mark.parametrize(
    "text", ["P1M", "P1Y", "-PT1H", "PT-1H", "P", "PT", "P1DT", "3600", "01:00:00", "", "P99999D"]
)
def test_other_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidMasterDataError):
        parse_duration(text)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_iana_zones_are_accepted(zone: str) -> None:
    assert valid_timezone(zone) == zone


@pytest.mark.parametrize("zone", ["CEST", "Europe/Pariss", "", "../etc/passwd", "+02:00"])
def test_unknown_zones_are_refused(zone: str) -> None:
    with pytest.raises(InvalidMasterDataError, match="IANA"):
        valid_timezone(zone)


@pytest.mark.parametrize(
    ("gtin", "problem"),
    [
        ("09506000134353", "check digit should be 2"),
        ("0950600013435", "must be 14 digits"),
        ("0950600013435A", "ASCII digits"),
        ("０９５０６０００１３４３５２", "must be 14 digits|ASCII digits"),  # full-width digits
    ],
)
def test_bad_gtins_are_refused(gtin: str, problem: str) -> None:
    assert valid_gtin14("09506000134352") == "09506000134352"
    with pytest.raises(InvalidMasterDataError, match=problem):
        valid_gtin14(gtin)
