"""Pure checks of master-data values: IANA time zones, GTIN-14 keys, ISO 8601 durations.

>>> valid_timezone("Europe/Paris")
'Europe/Paris'
>>> valid_gtin14("09506000134352")
'09506000134352'
>>> parse_duration("P1DT2H30M")
datetime.timedelta(days=1, seconds=9000)
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta
from functools import cache
from typing import Final

from cloud.masterdata import InvalidMasterDataError
from protocols.gs1.check_digit import require_gs1_key
from protocols.gs1.errors import Gs1KeyError

LOCATION_KINDS: Final = frozenset(
    {"zone", "fridge", "freezer", "room", "dock_door", "shelf", "transit", "other"}
)
"""The kinds schema v1 allows (``locations.kind`` CHECK)."""

MAX_DURATION: Final = timedelta(days=36_500)
"""Longer than any shelf life; keeps ``interval`` and ``timedelta`` arithmetic far from overflow."""

# Weeks, or days and a time part. Years and months are refused: their length depends on the
# calendar, and a stability budget must mean the same number of hours everywhere.
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d{1,5})W|(?:(?P<days>\d{1,5})D)?"
    r"(?:T(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,8})M)?(?:(?P<seconds>\d{1,10}(?:[.,]\d{1,6})?)S)?)?)$"
)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone known to this system.

    >>> valid_timezone("Mars/Olympus")
    Traceback (most recent call last):
    ...
    cloud.masterdata.InvalidMasterDataError: unknown IANA time zone 'Mars/Olympus'
    """
    if name not in _zones():
        raise InvalidMasterDataError(f"unknown IANA time zone {name!r}")
    return name


def valid_gtin14(gtin: str) -> str:
    """``gtin`` if it is 14 ASCII digits with a correct GS1 check digit.

    >>> valid_gtin14("09506000134353")
    Traceback (most recent call last):
    ...
    cloud.masterdata.InvalidMasterDataError: GTIN 09506000134353: check digit should be 2
    """
    try:
        return require_gs1_key(gtin, 14, "GTIN")
    except Gs1KeyError as err:
        raise InvalidMasterDataError(str(err)) from err


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds as a ``timedelta``.

    >>> parse_duration("P2W"), parse_duration("PT0.5S")
    (datetime.timedelta(days=14), datetime.timedelta(microseconds=500000))
    >>> parse_duration("P1M")
    Traceback (most recent call last):
    ...
    cloud.masterdata.InvalidMasterDataError: 'P1M' is not an ISO 8601 duration such as PT12H or P14D
    """
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise InvalidMasterDataError(f"{text!r} is not an ISO 8601 duration such as PT12H or P14D")
    parts = {k: float(v.replace(",", ".")) for k, v in match.groupdict().items() if v}
    span = timedelta(**parts)
    if span > MAX_DURATION:
        raise InvalidMasterDataError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return span
