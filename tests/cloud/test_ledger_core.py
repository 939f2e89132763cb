"""The pure ledger core: movement rules, balance arithmetic, hashing, stays (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.ledger import InsufficientBalanceError, InvalidMovementError, LedgerError
from cloud.ledger.chain import ChainChecker
from cloud.ledger.core import (
    GENESIS,
    BalanceKey,
    Book,
    Draft,
    Movement,
    Place,
    Status,
    canonical,
    entry_hash,
    replay,
    stays,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
A, Q, R = Status.AVAILABLE, Status.QUARANTINED, Status.RELEASED


def d(movement: Movement, qty: int = 1, frm: Place | None = None, to: Place | None = None,
      **kw: object) -> Draft:  # fmt: skip
    return Draft(movement, 1, qty, T0, "t", frm=frm, to=to, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        (d(Movement.RECEIVE, frm=Place("x", A), to=Place("d", A)), "has no a from side"),
        (d(Movement.RECEIVE, to=Place("d", R)), "available or quarantined"),
        (d(Movement.PUT_AWAY, frm=Place("d", A), to=Place("d", A)), "must change location"),
        (d(Movement.MOVE, frm=Place("d", A), to=Place("f", Q)), "must give status available"),
        (d(Movement.QUARANTINE, frm=Place("d", A), to=Place("f", Q)), "in place"),
        (d(Movement.QUARANTINE, frm=Place("d", Q), to=Place("d", Q)), "cannot take stock"),
        (d(Movement.RELEASE, frm=Place("d", A), to=Place("d", R)), "cannot take stock"),
        (d(Movement.ISSUE, frm=Place("d", Q)), "cannot take stock in status quarantined"),
        (d(Movement.SCRAP, frm=Place("d", A)), "cannot take stock"),
        (d(Movement.ADJUST), "exactly one"),
        (d(Movement.ADJUST, frm=Place("d", A), to=Place("d", A)), "exactly one"),
        (d(Movement.RECEIVE, 0, to=Place("d", A)), "positive"),
        (d(Movement.RECEIVE, 2, to=Place("d", A), epc_uri="urn:x"), "quantity 1"),
        (Draft(Movement.RECEIVE, 1, 1, datetime(2026, 1, 1), "t", to=Place("d", A)), "aware"),
    ],
)  # fmt: skip
def test_rules_refuse_movements_that_do_not_balance(draft: Draft, message: str) -> None:
    with pytest.raises(InvalidMovementError, match=message):
        Book().post(draft)


def test_a_refused_post_leaves_the_book_unchanged() -> None:
    book = Book()
    book.post(d(Movement.RECEIVE, 3, to=Place("d", A)))
    before = dict(book.balances)
    with pytest.raises(InsufficientBalanceError):
        book.post(d(Movement.ISSUE, 4, frm=Place("d", A)))
    assert book.balances == before


def test_quarantine_release_reject_and_recall_walk_the_statuses() -> None:
    book = Book()
    for draft in (
        d(Movement.RECEIVE, 10, to=Place("f", A)),
        d(Movement.QUARANTINE, 10, frm=Place("f", A), to=Place("f", Q)),
        d(Movement.RELEASE, 6, frm=Place("f", Q), to=Place("f", R)),
        d(Movement.REJECT, 4, frm=Place("f", Q), to=Place("f", Status.REJECTED)),
        d(Movement.SCRAP, 4, frm=Place("f", Status.REJECTED)),
        d(Movement.ISSUE, 1, frm=Place("f", R), counterparty="Ward 3"),
        d(Movement.RECALL_HOLD, 5, frm=Place("f", R), to=Place("f", Status.RECALLED)),
    ):
        book.post(draft)
    assert {k.status: v for k, v in book.balances.items() if v} == {Status.RECALLED: 5}


def test_the_hash_covers_every_field_and_the_link() -> None:
    base = d(Movement.RECEIVE, 2, to=Place("d", A), reason="asn")
    h = entry_hash(base, recorded_at=T0, prev_hash=GENESIS)
    for changed in (
        d(Movement.RECEIVE, 3, to=Place("d", A), reason="asn"),
        d(Movement.RECEIVE, 2, to=Place("e", A), reason="asn"),
        d(Movement.RECEIVE, 2, to=Place("d", A), reason="ASN"),
        d(Movement.RECEIVE, 2, to=Place("d", Q), reason="asn"),
    ):
        assert entry_hash(changed, recorded_at=T0, prev_hash=GENESIS) != h
    assert entry_hash(base, recorded_at=T0 + timedelta(microseconds=1), prev_hash=GENESIS) != h
    assert entry_hash(base, recorded_at=T0, prev_hash=h) != h
    # the same instant in another zone is the same entry
    other_zone = T0.astimezone(ZoneInfo("Europe/Paris"))
    assert canonical(base, recorded_at=other_zone, prev_hash=GENESIS) == canonical(
        base, recorded_at=T0, prev_hash=GENESIS
    )


def test_the_chain_checker_reports_a_broken_link_first() -> None:
    drafts = [d(Movement.RECEIVE, n, to=Place("d", A)) for n in (1, 2, 3)]
    hashes, prev = [], GENESIS
    for draft in drafts:
        prev = entry_hash(draft, recorded_at=T0, prev_hash=prev)
        hashes.append(prev)
    checker = ChainChecker()
    checker.feed(1, drafts[0], T0, GENESIS, hashes[0])
    checker.feed(2, drafts[1], T0, hashes[1], hashes[1])  # links to itself, not to entry 1
    checker.feed(3, drafts[2], T0, hashes[1], hashes[2])
    assert checker.first_bad == 2
    assert checker.problem == "entry 2: prev_hash does not link to the entry before it"
    assert checker.balances == {BalanceKey(1, "d", A): 6}


def test_stays_overlap_when_a_lot_is_split() -> None:
    t1, t2, t3 = (T0 + timedelta(hours=h) for h in (1, 2, 3))
    found = stays([
        d(Movement.RECEIVE, 10, to=Place("dock", A)),
        Draft(Movement.PUT_AWAY, 1, 4, t1, "t", frm=Place("dock", A), to=Place("f1", A)),
        Draft(Movement.QUARANTINE, 1, 4, t2, "t", frm=Place("f1", A), to=Place("f1", Q)),
        Draft(Movement.PUT_AWAY, 1, 6, t3, "t", frm=Place("dock", A), to=Place("f2", A)),
    ])  # fmt: skip
    assert [(s.location_id, s.start, s.end) for s in found] == [
        ("dock", T0, t3),
        ("f1", t1, None),
        ("f2", t3, None),
    ]


PLACES = [Place(loc, status) for loc in ("dock", "f1") for status in (A, Q, R)]


@st.composite
def movements(draw: st.DrawFn) -> Draft:
    kinds = [Movement.RECEIVE, Movement.MOVE, Movement.ISSUE, Movement.QUARANTINE,
             Movement.RELEASE, Movement.ADJUST]  # fmt: skip
    movement = draw(st.sampled_from(kinds))
    qty = draw(st.integers(1, 5))
    loc = draw(st.sampled_from(["dock", "f1"]))
    other = "f1" if loc == "dock" else "dock"
    status = draw(st.sampled_from([A, Q, R]))
    sides = {
        Movement.RECEIVE: (None, Place(loc, A)),
        Movement.MOVE: (Place(loc, status), Place(other, status)),
        Movement.ISSUE: (Place(loc, status), None),
        Movement.QUARANTINE: (Place(loc, status), Place(loc, Q)),
        Movement.RELEASE: (Place(loc, Q), Place(loc, R)),
        Movement.ADJUST: draw(
            st.sampled_from([(Place(loc, status), None), (None, Place(loc, status))])
        ),
    }[movement]  # fmt: skip
    return d(movement, qty, frm=sides[0], to=sides[1])


@settings(max_examples=150, deadline=None)
@given(st.lists(movements(), max_size=40))
def test_balances_never_go_negative_and_equal_the_replay(drafts: list[Draft]) -> None:
    book = Book()
    accepted: list[Draft] = []
    for draft in drafts:
        try:
            book.post(draft)
        except LedgerError:
            continue
        accepted.append(draft)
    assert all(v >= 0 for v in book.balances.values())
    assert {k: v for k, v in book.balances.items() if v} == replay(accepted)
