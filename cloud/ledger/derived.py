"""The state the ledger's entries imply: balances, where each serialized unit is, lot status.

``coldtrace ledger verify`` replays every entry in order through ``Derivation`` and compares the
result with the tables the service keeps in step (``balances``, ``units``, ``lots.status``): a
superuser who flips a lot from quarantined to released in ``lots`` without a signed release
entry is shown, though no entry changed.

Lot status follows the updates the ledger service makes with each movement: a quarantine entry
quarantines an available or released lot, a release or reject decides it unless it is recalled,
a recall hold recalls it. A recall of a lot with nothing on hand, and expiry, change the status
without an entry; they are stricter than any status the ledger gives, so the table may say
``recalled`` or ``expired`` where the ledger says otherwise — every other difference is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from cloud.ledger import LedgerError
from cloud.ledger.core import BalanceKey, Book, Draft, Movement, Place

SERIALIZED = "urn:epc:id:sgtin:"
"""EPC URI prefix of serialized trade items, whose places the ledger's entries decide."""
OUTSIDE_THE_LEDGER = frozenset({"recalled", "expired"})
"""Lot statuses that may be set without an entry (see the module docstring)."""


def next_status(status: str, movement: Movement) -> str:
    """A lot's status after one of its entries.

    >>> next_status("available", Movement.QUARANTINE)
    'quarantined'
    >>> next_status("recalled", Movement.RELEASE)
    'recalled'
    >>> next_status("quarantined", Movement.MOVE)
    'quarantined'
    """
    if movement is Movement.QUARANTINE and status in ("available", "released"):
        return "quarantined"
    if movement is Movement.RELEASE and status != "recalled":
        return "released"
    if movement is Movement.REJECT and status != "recalled":
        return "rejected"
    if movement is Movement.RECALL_HOLD:
        return "recalled"
    return status


@dataclass
class IndexedBook(Book):
    """A ``Book`` that finds the units at a place through an index, for replaying a whole ledger.

    ``Book`` carries the units of a whole-balance move by scanning every unit it holds, which
    is right for the few units a writer loads, but quadratic over a ledger's history (measured
    on one loaded machine: 29 s for 22,000 entries moving 20,000 units, 3 s with the index).
    Same rules, same results (tests/cloud/test_ledger_derived.py compares the two).
    """

    at: dict[tuple[int | None, Place], set[str]] = field(default_factory=dict)

    def _move_units(self, draft: Draft) -> None:
        if draft.epc_uri is not None:
            self._unindex(draft.epc_uri)
            super()._move_units(draft)
            self._index(draft.epc_uri)
            return
        if draft.frm is None:
            return
        key = BalanceKey(draft.lot_id, draft.frm.location_id, draft.frm.status)
        if self.balances.get(key, 0) == 0 and self.serialized.get(key, 0):
            count = self.serialized.pop(key)
            moved = self.at.pop((draft.lot_id, draft.frm), set())
            for epc in moved:
                self.units[epc] = replace(self.units[epc], place=draft.to)
            if draft.to is not None:
                self.at.setdefault((draft.lot_id, draft.to), set()).update(moved)
                to_key = BalanceKey(draft.lot_id, draft.to.location_id, draft.to.status)
                self.serialized[to_key] = self.serialized.get(to_key, 0) + count

    def _unindex(self, epc: str) -> None:
        unit = self.units.get(epc)
        if unit is not None and unit.place is not None:
            self.at.get((unit.lot_id, unit.place), set()).discard(epc)

    def _index(self, epc: str) -> None:
        unit = self.units[epc]
        if unit.place is not None:
            self.at.setdefault((unit.lot_id, unit.place), set()).add(epc)


@dataclass
class Derivation:
    """Entries in, derived state out; the first impossible entry is remembered, not raised.

    >>> from datetime import datetime, UTC
    >>> from cloud.ledger.core import Status
    >>> t = datetime(2026, 3, 1, tzinfo=UTC)
    >>> f = Place("f1", Status.AVAILABLE)
    >>> d = Derivation()
    >>> d.feed(1, Draft(Movement.RECEIVE, 7, 2, t, "a", to=f))
    >>> d.feed(2, Draft(Movement.QUARANTINE, 7, 2, t, "a", frm=f,
    ...                 to=Place("f1", Status.QUARANTINED)))
    >>> d.lot_status[7]
    'quarantined'
    >>> d.lot_problems({7: "released"})
    ['lot 7: status released, the ledger says quarantined']
    >>> d.feed(3, Draft(Movement.ISSUE, 7, 1, t, "a", frm=f))
    >>> d.impossible
    'entry 3: impossible after the entries before it (issue: lot 7 has 0 available at f1, 1 asked)'
    """

    book: Book = field(default_factory=IndexedBook)
    lot_status: dict[int, str] = field(default_factory=dict)
    impossible: str | None = None

    def feed(self, entry_id: int, draft: Draft) -> None:
        self.lot_status[draft.lot_id] = next_status(
            self.lot_status.get(draft.lot_id, "available"), draft.movement
        )
        if self.impossible is not None:
            return  # the book is no longer trustworthy after a refused entry
        try:
            self.book.post(draft)
        except LedgerError as err:
            self.impossible = f"entry {entry_id}: impossible after the entries before it ({err})"
        self.book.carried.clear()  # only the live writer needs the list of whole-balance moves

    def lot_problems(self, table: dict[int, str]) -> list[str]:
        """Differences between ``lots.status`` (lot id → status) and the ledger."""
        problems = []
        for lot_id in sorted(table):
            derived = self.lot_status.get(lot_id, "available")
            stored = table[lot_id]
            if stored != derived and stored not in OUTSIDE_THE_LEDGER:
                problems.append(f"lot {lot_id}: status {stored}, the ledger says {derived}")
        return problems

    def unit_problems(self, table: dict[str, Place | None]) -> list[str]:
        """Differences between ``units`` (EPC → place, None when not on hand) and the ledger,
        for serialized items (SGTIN). Containers (SSCC) are placed by receiving as they pass a
        door, not by entries of their own: their contents' entries are what count."""
        problems = []
        epcs = {e for e in set(table) | set(self.book.units) if e.startswith(SERIALIZED)}
        for epc in sorted(epcs):
            unit = self.book.units.get(epc)
            derived = unit.place if unit is not None else None
            stored = table.get(epc)
            if stored != derived:
                problems.append(
                    f"unit {epc}: at {_where(stored)}, the ledger says {_where(derived)}"
                )
        return problems


def _where(place: Place | None) -> str:
    return "nowhere" if place is None else f"{place.location_id} ({place.status.value})"
