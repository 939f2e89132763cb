"""Pure cycle-count comparison: what was read at a location against what the ledger says.

Serialized units are compared one by one: *matched* (on record here and read), *missing* (on
record here, not read), *found* (read here, on record elsewhere or not on hand), *unknown* (read,
no such unit). Non-serialized stock is compared with a counted quantity per lot and status.

On confirmation, each difference becomes a movement: a missing unit is adjusted out; a unit
found that the ledger has elsewhere is moved here with its status; a unit found that the ledger
says had left is adjusted in as *quarantined* (its temperature history is unknown); a bulk
difference is adjusted in or out. Unknown EPCs cannot be booked (no lot): they stay reported.

>>> from datetime import datetime, UTC
>>> here = [OnRecord("urn:a", "(01)1(21)a", 7, Status.AVAILABLE),
...         OnRecord("urn:b", "(01)1(21)b", 7, Status.AVAILABLE)]
>>> r = compare("f1", here, {"(01)1(21)a": "urn:a", "(01)1(21)z": "urn:z"}, {}, [])
>>> r.matched, [m.epc_uri for m in r.missing], r.unknown
(('urn:a',), ['urn:b'], ('(01)1(21)z',))
>>> [d.movement.value for d in adjustments(r, datetime(2026, 1, 1, tzinfo=UTC), "op", "count")]
['adjust']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cloud.ledger.core import Draft, Movement, Place, Status


@dataclass(frozen=True)
class OnRecord:
    """A unit the ledger places at the counted location."""

    epc_uri: str
    gs1_key: str
    lot_id: int
    status: Status


@dataclass(frozen=True)
class Elsewhere:
    """A unit read here that the ledger has at another place (``place`` None: not on hand)."""

    epc_uri: str
    lot_id: int
    place: Place | None


@dataclass(frozen=True)
class BulkLine:
    lot_id: int
    status: Status
    on_record: int  # the non-serialized part of the balance
    counted: int

    @property
    def difference(self) -> int:
        return self.counted - self.on_record


@dataclass(frozen=True)
class CountResult:
    location_id: str
    matched: tuple[str, ...]
    missing: tuple[OnRecord, ...]
    found: tuple[Elsewhere, ...]
    unknown: tuple[str, ...]
    bulk: tuple[BulkLine, ...]

    @property
    def differences(self) -> int:
        moved = len(self.missing) + len(self.found)
        return moved + sum(1 for b in self.bulk if b.difference)


def compare(
    location_id: str,
    on_record: Sequence[OnRecord],
    read: Mapping[str, str],
    known: Mapping[str, Elsewhere],
    bulk: Sequence[BulkLine],
) -> CountResult:
    """``read``: GS1 key → URI of what was read; ``known``: GS1 key → units recorded elsewhere."""
    here = {u.gs1_key: u for u in on_record}
    matched = tuple(sorted(here[k].epc_uri for k in read if k in here))
    missing = tuple(sorted((u for k, u in here.items() if k not in read), key=lambda u: u.epc_uri))
    found = tuple(sorted((known[k] for k in read if k not in here and k in known),
                         key=lambda e: e.epc_uri))  # fmt: skip
    unknown = tuple(sorted(k for k in read if k not in here and k not in known))
    return CountResult(location_id, matched, missing, found, unknown, tuple(bulk))


def adjustments(result: CountResult, at: datetime, actor: str, reason: str) -> list[Draft]:
    """The movements that make the ledger agree with the count.

    >>> from datetime import datetime, UTC
    >>> gone = Elsewhere("urn:u", 7, None)   # the ledger says it left the site
    >>> r = CountResult("f1", (), (), (gone,), (), ())
    >>> [(d.movement.value, d.to) for d in adjustments(r, datetime(2026, 1, 1, tzinfo=UTC),
    ...                                                  "op", "count")]
    [('adjust', Place(location_id='f1', status=<Status.QUARANTINED: 'quarantined'>))]
    """
    loc = result.location_id

    def book(
        movement: Movement, lot_id: int, qty: int, *, frm: Place | None = None,
        to: Place | None = None, epc: str | None = None,
    ) -> Draft:  # fmt: skip
        return Draft(movement, lot_id, qty, at, actor, frm=frm, to=to, epc_uri=epc, reason=reason)

    drafts = [
        book(Movement.ADJUST, u.lot_id, 1, frm=Place(loc, u.status), epc=u.epc_uri)
        for u in result.missing
    ]
    for e in result.found:
        if e.place is None:
            to = Place(loc, Status.QUARANTINED)
            drafts.append(book(Movement.ADJUST, e.lot_id, 1, to=to, epc=e.epc_uri))
        elif e.place.location_id != loc:
            to = Place(loc, e.place.status)
            drafts.append(book(Movement.MOVE, e.lot_id, 1, frm=e.place, to=to, epc=e.epc_uri))
    for b in result.bulk:
        place = Place(loc, b.status)
        if b.difference > 0:
            drafts.append(book(Movement.ADJUST, b.lot_id, b.difference, to=place))
        elif b.difference < 0:
            drafts.append(book(Movement.ADJUST, b.lot_id, -b.difference, frm=place))
    return drafts
