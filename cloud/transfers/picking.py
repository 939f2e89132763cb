"""First-expiry-first-out picking and the shelf-life rules an outbound unit must meet. Pure.

A lot is pickable for a shipment leaving on day ``on`` when its stock is usable (available or
released), the lot itself is neither quarantined, rejected nor recalled, it is not past its
expiry date, and it keeps at least ``min_remaining`` of shelf life on that day (the receiving
site's or customer's rule: a hospital often refuses stock with less than, say, 90 days left).
Among pickable stock the earliest expiry goes first; a lot without an expiry date goes last.

>>> from datetime import date, timedelta
>>> stock = [Stock(1, "00614141123452", "L-late", date(2027, 6, 1), "fridge-1", "available", 10),
...          Stock(2, "00614141123452", "L-soon", date(2026, 4, 1), "fridge-1", "available", 10),
...          Stock(3, "00614141123452", "L-early", date(2026, 9, 1), "fridge-2", "available", 4)]
>>> s = suggest([Line(1, "00614141123452", None, 8)], stock, on=date(2026, 3, 1),
...             min_remaining=timedelta(days=90))
>>> [(p.lot_number, p.quantity) for p in s.picks], s.short
([('L-early', 4), ('L-late', 4)], {})
>>> [(k.lot_number, k.reason) for k in s.skipped]
[('L-soon', 'short-dated: 31 days left, 90 required')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

_USABLE = frozenset({"available", "released"})
_LOT_BLOCKING = frozenset({"quarantined", "rejected", "recalled", "expired"})


@dataclass(frozen=True)
class Line:
    """An order line: ``quantity`` of a GTIN, of one lot or (``lot_number`` None) any lot."""

    line_no: int
    gtin: str
    lot_number: str | None
    quantity: int


@dataclass(frozen=True)
class Stock:
    """A balance the ledger holds: lot, where, in which status, how many."""

    lot_id: int
    gtin: str
    lot_number: str
    expiry: date | None
    location_id: str
    status: str
    quantity: int
    lot_status: str = "available"


@dataclass(frozen=True)
class Pick:
    line_no: int
    lot_id: int
    lot_number: str
    expiry: date | None
    location_id: str
    quantity: int


@dataclass(frozen=True)
class Skipped:
    lot_id: int
    lot_number: str
    location_id: str
    quantity: int
    reason: str


@dataclass(frozen=True)
class Suggestion:
    picks: tuple[Pick, ...]
    short: dict[int, int]  # line number → quantity no pickable stock covers
    skipped: tuple[Skipped, ...]


def refusal(
    *,
    status: str,
    lot_status: str,
    expiry: date | None,
    on: date,
    min_remaining: timedelta,
) -> str | None:
    """Why stock may not leave on day ``on`` (None: it may).

    >>> from datetime import date, timedelta
    >>> refusal(status="available", lot_status="recalled", expiry=None, on=date(2026, 1, 1),
    ...         min_remaining=timedelta(0))
    'lot recalled'
    >>> refusal(status="available", lot_status="available", expiry=date(2025, 12, 31),
    ...         on=date(2026, 1, 1), min_remaining=timedelta(0))
    'expired 2025-12-31'
    """
    if lot_status in _LOT_BLOCKING:
        return f"lot {lot_status}"
    if status not in _USABLE:
        return status
    if expiry is not None and expiry < on:
        return f"expired {expiry.isoformat()}"
    if expiry is not None and expiry - on < min_remaining:
        left = (expiry - on).days
        return f"short-dated: {left} days left, {min_remaining.days} required"
    return None


def _fefo_key(s: Stock) -> tuple[date, str, str]:
    return (s.expiry or date.max, s.lot_number, s.location_id)


def suggest(
    lines: Sequence[Line], stock: Sequence[Stock], *, on: date, min_remaining: timedelta
) -> Suggestion:
    """Picks per line from ``stock`` by earliest expiry, skipping what may not leave."""
    left = {(s.lot_id, s.location_id, s.status): s.quantity for s in stock}
    picks: list[Pick] = []
    skipped: dict[tuple[int, str, str], Skipped] = {}
    short: dict[int, int] = {}
    for line in lines:
        need = line.quantity
        candidates = [
            s for s in stock if s.gtin == line.gtin and (line.lot_number in (None, s.lot_number))
        ]
        for s in sorted(candidates, key=_fefo_key):
            why = refusal(
                status=s.status, lot_status=s.lot_status, expiry=s.expiry, on=on,
                min_remaining=min_remaining,
            )  # fmt: skip
            if why is not None:
                skipped[s.lot_id, s.location_id, s.status] = Skipped(
                    s.lot_id, s.lot_number, s.location_id, s.quantity, why
                )
                continue
            key = (s.lot_id, s.location_id, s.status)
            take = min(need, left[key])
            if take <= 0:
                continue
            left[key] -= take
            need -= take
            picks.append(Pick(line.line_no, s.lot_id, s.lot_number, s.expiry, s.location_id, take))
            if need == 0:
                break
        if need:
            short[line.line_no] = need
    return Suggestion(tuple(picks), short, tuple(skipped.values()))
