"""Pure ledger domain: movement rules, balance arithmetic and the entry hash.

A movement takes ``quantity`` of a lot from one (location, status) and puts it on another; one of
the two sides may be empty (a receipt comes from outside, an issue leaves the building, a count
adjustment adds or removes). Balances per lot × location × status never go negative.

>>> from datetime import datetime, UTC
>>> t = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
>>> book = Book()
>>> d = Draft(Movement.RECEIVE, lot_id=1, quantity=5, to=Place("dock-1", Status.AVAILABLE),
...           effective_at=t, actor="dock")
>>> book.post(d)
>>> book.balances[BalanceKey(1, "dock-1", Status.AVAILABLE)]
5
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum

from cloud.ledger import InsufficientBalanceError, InvalidMovementError


class Movement(StrEnum):
    RECEIVE = "receive"
    PUT_AWAY = "put_away"
    MOVE = "move"
    ISSUE = "issue"
    ADJUST = "adjust"
    QUARANTINE = "quarantine"
    RELEASE = "release"
    REJECT = "reject"
    RECALL_HOLD = "recall_hold"
    SCRAP = "scrap"


class Status(StrEnum):
    AVAILABLE = "available"
    QUARANTINED = "quarantined"
    RELEASED = "released"
    REJECTED = "rejected"
    RECALLED = "recalled"


USABLE = frozenset({Status.AVAILABLE, Status.RELEASED})
ALL_STATUSES = frozenset(Status)
GENESIS = bytes(32)


def expired(expiry: date | None, at: datetime) -> bool:
    """True when a lot with this expiry date may no longer be used at ``at`` (UTC date).

    The product may be used through its expiry date, not after it.

    >>> from datetime import datetime, date, UTC
    >>> expired(date(2026, 3, 1), datetime(2026, 3, 1, 23, 0, tzinfo=UTC))
    False
    >>> expired(date(2026, 3, 1), datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    True
    """
    return expiry is not None and at.astimezone(UTC).date() > expiry


@dataclass(frozen=True)
class Place:
    location_id: str
    status: Status


@dataclass(frozen=True)
class BalanceKey:
    lot_id: int
    location_id: str
    status: Status


@dataclass(frozen=True)
class Rule:
    """Which sides a movement has and which statuses it may take and give."""

    has_from: bool | None  # None: exactly one of the two sides (count adjustment)
    has_to: bool | None
    from_statuses: frozenset[Status]
    to_status: Status | None  # None: the same status as taken
    same_location: bool | None  # True: in place; False: elsewhere; None: no rule


RULES: dict[Movement, Rule] = {
    Movement.RECEIVE: Rule(False, True, frozenset(), None, None),
    Movement.PUT_AWAY: Rule(True, True, ALL_STATUSES, None, False),
    Movement.MOVE: Rule(True, True, ALL_STATUSES, None, False),
    Movement.ISSUE: Rule(True, False, USABLE, None, None),
    Movement.ADJUST: Rule(None, None, ALL_STATUSES, None, None),
    Movement.QUARANTINE: Rule(True, True, USABLE, Status.QUARANTINED, True),
    Movement.RELEASE: Rule(True, True, frozenset({Status.QUARANTINED}), Status.RELEASED, True),
    Movement.REJECT: Rule(True, True, frozenset({Status.QUARANTINED}), Status.REJECTED, True),
    Movement.RECALL_HOLD: Rule(True, True, ALL_STATUSES - {Status.RECALLED}, Status.RECALLED, True),
    Movement.SCRAP: Rule(True, False, frozenset({Status.REJECTED, Status.RECALLED}), None, None),
}


@dataclass(frozen=True)
class Draft:
    """A movement to append (before it has an id and a hash)."""

    movement: Movement
    lot_id: int
    quantity: int
    effective_at: datetime
    actor: str
    frm: Place | None = None
    to: Place | None = None
    epc_uri: str | None = None
    reason: str | None = None
    reference: str | None = None
    counterparty: str | None = None
    signature_meaning: str | None = None


def check(draft: Draft) -> None:
    """Refuses a draft that breaks its movement's rule (raises ``InvalidMovementError``).

    >>> from datetime import datetime, UTC
    >>> t = datetime(2026, 3, 1, tzinfo=UTC)
    >>> check(Draft(Movement.ISSUE, 1, 2, t, "ops", frm=Place("f1", Status.QUARANTINED)))
    Traceback (most recent call last):
    ...
    cloud.ledger.InvalidMovementError: issue cannot take stock in status quarantined
    """
    rule = RULES[draft.movement]
    name = draft.movement.value
    if draft.quantity <= 0:
        raise InvalidMovementError(f"{name}: quantity must be positive, got {draft.quantity}")
    if draft.effective_at.tzinfo is None:
        raise InvalidMovementError(f"{name}: effective_at must be an aware datetime")
    if draft.epc_uri is not None and draft.quantity != 1:
        raise InvalidMovementError(f"{name}: a serialized unit moves with quantity 1")
    if rule.has_from is None:
        if (draft.frm is None) == (draft.to is None):
            raise InvalidMovementError(f"{name} needs exactly one of from and to")
    else:
        if (draft.frm is not None) != rule.has_from:
            raise InvalidMovementError(
                f"{name} {'needs' if rule.has_from else 'has no'} a from side"
            )
        if (draft.to is not None) != rule.has_to:
            raise InvalidMovementError(f"{name} {'needs' if rule.has_to else 'has no'} a to side")
    if draft.frm is not None and draft.frm.status not in rule.from_statuses:
        raise InvalidMovementError(f"{name} cannot take stock in status {draft.frm.status.value}")
    if draft.frm is not None and draft.to is not None:
        _check_pair(draft, rule)
    receivable = {Status.AVAILABLE, Status.QUARANTINED}
    if draft.movement is Movement.RECEIVE and draft.to and draft.to.status not in receivable:
        raise InvalidMovementError("receive puts stock in status available or quarantined")


def _check_pair(draft: Draft, rule: Rule) -> None:
    assert draft.frm is not None
    assert draft.to is not None
    name = draft.movement.value
    wanted = rule.to_status or draft.frm.status
    if draft.to.status is not wanted:
        raise InvalidMovementError(f"{name} must give status {wanted.value}, not {draft.to.status}")
    same = draft.frm.location_id == draft.to.location_id
    if rule.same_location is True and not same:
        raise InvalidMovementError(f"{name} changes status in place; locations differ")
    if rule.same_location is False and same:
        raise InvalidMovementError(f"{name} must change location")


@dataclass(frozen=True)
class UnitPlace:
    """Where a serialized unit is (``place`` None: known but not on hand)."""

    lot_id: int | None
    place: Place | None


@dataclass
class Book:
    """A working set of balances and unit places that drafts are posted to, in order.

    ``serialized`` counts the serialized units on hand per balance key, so that a lot-level
    movement never takes a quantity that is in fact a particular unit: a partial lot-level move
    may only take the non-serialized remainder; a whole-balance move carries every unit with it.
    """

    balances: dict[BalanceKey, int] = field(default_factory=dict)
    units: dict[str, UnitPlace] = field(default_factory=dict)
    serialized: dict[BalanceKey, int] = field(default_factory=dict)
    carried: list[tuple[BalanceKey, Place | None]] = field(default_factory=list)

    def post(self, draft: Draft) -> None:
        """Applies one draft or raises, leaving the book unchanged on refusal."""
        check(draft)
        if draft.epc_uri is not None:
            self._check_unit(draft)
        if draft.frm is not None:
            key = BalanceKey(draft.lot_id, draft.frm.location_id, draft.frm.status)
            have = self.balances.get(key, 0)
            if have < draft.quantity:
                raise InsufficientBalanceError(
                    f"{draft.movement.value}: lot {draft.lot_id} has {have} "
                    f"{key.status.value} at {key.location_id}, {draft.quantity} asked"
                )
            self._check_serialized(draft, key, have)
            self.balances[key] = have - draft.quantity
        if draft.to is not None:
            key = BalanceKey(draft.lot_id, draft.to.location_id, draft.to.status)
            self.balances[key] = self.balances.get(key, 0) + draft.quantity
        self._move_units(draft)

    def _check_unit(self, draft: Draft) -> None:
        assert draft.epc_uri is not None
        unit = self.units.get(draft.epc_uri, UnitPlace(draft.lot_id, None))
        if unit.lot_id is not None and unit.lot_id != draft.lot_id:
            raise InvalidMovementError(f"{draft.epc_uri} belongs to lot {unit.lot_id}")
        if unit.place != draft.frm:
            where = "not on hand" if unit.place is None else f"at {unit.place}"
            raise InsufficientBalanceError(f"{draft.movement.value}: {draft.epc_uri} is {where}")

    def _check_serialized(self, draft: Draft, key: BalanceKey, have: int) -> None:
        if draft.epc_uri is not None:
            return
        units_here = self.serialized.get(key, 0)
        if draft.quantity != have and have - units_here < draft.quantity:
            raise InvalidMovementError(
                f"{draft.movement.value}: only {have - units_here} of lot {draft.lot_id} at "
                f"{key.location_id} are not serialized; move serialized units one by one"
            )

    def _move_units(self, draft: Draft) -> None:
        to_key = (
            BalanceKey(draft.lot_id, draft.to.location_id, draft.to.status) if draft.to else None
        )
        if draft.epc_uri is not None:
            self.units[draft.epc_uri] = UnitPlace(draft.lot_id, draft.to)
            if draft.frm is not None:
                key = BalanceKey(draft.lot_id, draft.frm.location_id, draft.frm.status)
                self.serialized[key] = self.serialized.get(key, 0) - 1
            if to_key is not None:
                self.serialized[to_key] = self.serialized.get(to_key, 0) + 1
            return
        if draft.frm is None:
            return
        key = BalanceKey(draft.lot_id, draft.frm.location_id, draft.frm.status)
        if self.balances.get(key, 0) == 0 and self.serialized.get(key, 0):
            # a whole-balance move: every unit there follows it
            count = self.serialized.pop(key)
            self.carried.append((key, draft.to))
            for epc, unit in list(self.units.items()):
                if unit.lot_id == draft.lot_id and unit.place == draft.frm:
                    self.units[epc] = replace(unit, place=draft.to)
            if to_key is not None:
                self.serialized[to_key] = self.serialized.get(to_key, 0) + count


def replay(entries: Iterable[Draft]) -> dict[BalanceKey, int]:
    """The balances a sequence of movements leaves (non-zero ones only).

    >>> from datetime import datetime, UTC
    >>> t = datetime(2026, 3, 1, tzinfo=UTC)
    >>> dock, fridge = Place("dock", Status.AVAILABLE), Place("f1", Status.AVAILABLE)
    >>> replay([Draft(Movement.RECEIVE, 7, 10, t, "a", to=dock),
    ...         Draft(Movement.PUT_AWAY, 7, 4, t, "a", frm=dock, to=fridge)])
    {BalanceKey(lot_id=7, location_id='dock', status=<Status.AVAILABLE: 'available'>): 6, \
BalanceKey(lot_id=7, location_id='f1', status=<Status.AVAILABLE: 'available'>): 4}
    """
    totals: dict[BalanceKey, int] = {}
    for d in entries:
        if d.frm is not None:
            key = BalanceKey(d.lot_id, d.frm.location_id, d.frm.status)
            totals[key] = totals.get(key, 0) - d.quantity
        if d.to is not None:
            key = BalanceKey(d.lot_id, d.to.location_id, d.to.status)
            totals[key] = totals.get(key, 0) + d.quantity
    return {k: v for k, v in sorted(totals.items(), key=_sort_key) if v != 0}


def _sort_key(item: tuple[BalanceKey, int]) -> tuple[int, str, str]:
    key = item[0]
    return (key.lot_id, key.location_id, key.status.value)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(draft: Draft, *, recorded_at: datetime, prev_hash: bytes) -> bytes:
    """The bytes an entry's hash covers: sorted-key compact JSON of every stored field.

    >>> from datetime import datetime, UTC
    >>> t = datetime(2026, 3, 1, tzinfo=UTC)
    >>> canonical(Draft(Movement.RECEIVE, 1, 1, t, "a", to=Place("d", Status.AVAILABLE)),
    ...           recorded_at=t, prev_hash=GENESIS)[:40]
    b'{"actor":"a","counterparty":null,"effect'
    """
    body = {
        "v": 1,
        "recorded_at": _utc(recorded_at),
        "effective_at": _utc(draft.effective_at),
        "movement": draft.movement.value,
        "lot_id": draft.lot_id,
        "epc_uri": draft.epc_uri,
        "quantity": draft.quantity,
        "from_location": draft.frm.location_id if draft.frm else None,
        "from_status": draft.frm.status.value if draft.frm else None,
        "to_location": draft.to.location_id if draft.to else None,
        "to_status": draft.to.status.value if draft.to else None,
        "actor": draft.actor,
        "reason": draft.reason,
        "reference": draft.reference,
        "counterparty": draft.counterparty,
        "signature_meaning": draft.signature_meaning,
        "prev_hash": prev_hash.hex(),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(draft: Draft, *, recorded_at: datetime, prev_hash: bytes) -> bytes:
    """sha256 over ``canonical``: each entry's hash covers the hash of the one before it.

    >>> from datetime import datetime, UTC
    >>> t = datetime(2026, 3, 1, tzinfo=UTC)
    >>> d = Draft(Movement.RECEIVE, 1, 1, t, "a", to=Place("d", Status.AVAILABLE))
    >>> first = entry_hash(d, recorded_at=t, prev_hash=GENESIS)
    >>> len(first), entry_hash(d, recorded_at=t, prev_hash=first) != first
    (32, True)
    """
    return hashlib.sha256(canonical(draft, recorded_at=recorded_at, prev_hash=prev_hash)).digest()


@dataclass(frozen=True)
class Stay:
    """An interval the ledger says a lot was (partly) at a location; ``end`` None: still there."""

    location_id: str
    start: datetime
    end: datetime | None


def stays(entries: Iterable[Draft]) -> list[Stay]:
    """The stays of one lot from its movements (any order; sorted by effective time here).

    >>> from datetime import datetime, UTC
    >>> t1, t2 = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    >>> dock, f1 = Place("dock", Status.AVAILABLE), Place("f1", Status.AVAILABLE)
    >>> [(s.location_id, s.end is None) for s in stays([
    ...     Draft(Movement.RECEIVE, 1, 3, t1, "a", to=dock),
    ...     Draft(Movement.PUT_AWAY, 1, 3, t2, "a", frm=dock, to=f1)])]
    [('dock', False), ('f1', True)]
    """
    on_hand: dict[str, int] = {}
    open_since: dict[str, datetime] = {}
    done: list[Stay] = []
    for d in sorted(entries, key=lambda e: e.effective_at):
        deltas: dict[str, int] = {}
        if d.frm is not None:
            deltas[d.frm.location_id] = deltas.get(d.frm.location_id, 0) - d.quantity
        if d.to is not None:
            deltas[d.to.location_id] = deltas.get(d.to.location_id, 0) + d.quantity
        for location, delta in deltas.items():
            before = on_hand.get(location, 0)
            after = before + delta
            on_hand[location] = after
            if before <= 0 < after:
                open_since[location] = d.effective_at
            elif after <= 0 < before and location in open_since:
                done.append(Stay(location, open_since.pop(location), d.effective_at))
    done.extend(Stay(loc, start, None) for loc, start in open_since.items())
    return sorted(done, key=lambda s: (s.start, s.location_id))
