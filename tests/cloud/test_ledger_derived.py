"""The derived state verify replays (issue 12.5): lot status rules and the indexed book."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from cloud.ledger import LedgerError
from cloud.ledger.core import BalanceKey, Book, Draft, Movement, Place, Status
from cloud.ledger.derived import Derivation, IndexedBook, next_status

T = datetime(2026, 3, 1, tzinfo=UTC)
PLACES = [Place(loc, st) for loc in ("dock", "f1", "f2")
          for st in (Status.AVAILABLE, Status.QUARANTINED, Status.RELEASED)]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "movement", "after"),
    [
        ("available", Movement.QUARANTINE, "quarantined"),
        ("released", Movement.QUARANTINE, "quarantined"),
        ("rejected", Movement.QUARANTINE, "rejected"),  # as the service: only usable lots
        ("quarantined", Movement.RELEASE, "released"),
        ("quarantined", Movement.REJECT, "rejected"),
        ("recalled", Movement.RELEASE, "recalled"),
        ("recalled", Movement.REJECT, "recalled"),
        ("released", Movement.RECALL_HOLD, "recalled"),
        ("quarantined", Movement.MOVE, "quarantined"),
        ("available", Movement.RECEIVE, "available"),
    ],
)
def test_lot_status_follows_the_service_rules(status: str, movement: Movement, after: str) -> None:
    assert next_status(status, movement) == after


def test_statuses_set_outside_the_ledger_may_only_be_stricter() -> None:
    d = Derivation()
    f = Place("f1", Status.AVAILABLE)
    d.feed(1, Draft(Movement.RECEIVE, 1, 2, T, "a", to=f))
    assert d.lot_problems({1: "recalled", 2: "recalled", 3: "expired"}) == []
    assert d.lot_problems({1: "released"}) == ["lot 1: status released, the ledger says available"]


def _random_draft(rng: random.Random, book: Book) -> Draft:
    lot = rng.choice([1, 2])
    kind = rng.random()
    if kind < 0.3:
        epc = f"urn:epc:id:sgtin:0614141.11234{lot}.{rng.randint(0, 5)}"
        return Draft(Movement.RECEIVE, lot, 1, T, "a", to=PLACES[0], epc_uri=epc)
    if kind < 0.45:
        return Draft(Movement.RECEIVE, lot, rng.randint(1, 3), T, "a", to=PLACES[0])
    frm, to = rng.choice(PLACES), rng.choice(PLACES)
    movement = rng.choice([Movement.MOVE, Movement.QUARANTINE, Movement.RELEASE, Movement.PUT_AWAY])
    have = book.balances.get(BalanceKey(lot, frm.location_id, frm.status), 0)
    quantity = have if have and rng.random() < 0.6 else rng.randint(1, 3)
    return Draft(movement, lot, quantity, T, "a", frm=frm, to=to)


def test_the_indexed_book_moves_units_exactly_as_the_book_does() -> None:
    rng = random.Random(20260301)
    for _ in range(200):
        plain, indexed = Book(), IndexedBook()
        for _ in range(60):
            draft = _random_draft(rng, plain)
            outcomes = []
            for book in (plain, indexed):
                try:
                    book.post(draft)
                    outcomes.append("posted")
                except LedgerError as err:
                    outcomes.append(str(err))
            assert outcomes[0] == outcomes[1]
            assert plain.units == indexed.units
            assert plain.balances == indexed.balances
            assert plain.serialized == indexed.serialized
