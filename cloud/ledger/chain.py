"""``coldtrace ledger verify``: recompute the hash chain, signatures and derived state.

The pure ``ChainChecker`` is fed entries in ``entry_id`` order and reports the first entry whose
stored hash, link or signature does not match what its content gives; ``verify`` streams the
table through it, compares the replayed balances, unit places and lot statuses
(``derived.Derivation``) with the tables kept in step, the last hash with the head, and checks
that the append-only triggers and the roles' privileges are in place (``guards``).

Signatures: given the service's public keys, every entry (from ``unsigned_before`` on) must carry
a valid signature by one of them. Without keys they cannot be checked, but an unsigned entry after
a signed one is still shown: the service, once it signs, signs everything it writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ledger.core import GENESIS, BalanceKey, Draft, Movement, Place, Status, entry_hash
from cloud.ledger.derived import Derivation
from cloud.ledger.guards import check_guards
from cloud.ledger.signing import TrustedKeys


@dataclass
class ChainChecker:
    """Checks links and hashes entry by entry; remembers the first problem only.

    >>> from datetime import datetime, UTC
    >>> t = datetime(2026, 3, 1, tzinfo=UTC)
    >>> d = Draft(Movement.RECEIVE, 1, 2, t, "a", to=Place("d", Status.AVAILABLE))
    >>> good = entry_hash(d, recorded_at=t, prev_hash=GENESIS)
    >>> c = ChainChecker()
    >>> c.feed(1, d, t, GENESIS, good)
    >>> c.feed(2, d, t, good, good)   # content does not give this hash
    >>> c.first_bad, c.problem
    (2, 'entry 2: stored hash does not match its content')
    """

    expected_prev: bytes = GENESIS
    count: int = 0
    first_bad: int | None = None
    problem: str | None = None
    balances: dict[BalanceKey, int] = field(default_factory=dict)
    last_hash: bytes = GENESIS
    anchors: dict[int, bytes] = field(default_factory=dict)
    """Hashes of entries recorded outside the database earlier (``coldtrace ledger head``)."""
    anchored: set[int] = field(default_factory=set)
    keys: TrustedKeys | None = None
    """The service's public keys; None: signatures are not checked."""
    unsigned_before: int = 0
    """Entries with a smaller id may be unsigned (written before signing was configured)."""
    signed: int = 0
    unsigned: int = 0
    derivation: Derivation = field(default_factory=Derivation)

    def feed(
        self,
        entry_id: int,
        draft: Draft,
        recorded_at: datetime,
        prev: bytes,
        stored: bytes,
        *,
        signature: tuple[str, bytes] | None = None,
    ) -> None:
        """One entry; ``signature`` is (key id, signature) or None when unsigned."""
        self.count += 1
        computed = entry_hash(draft, recorded_at=recorded_at, prev_hash=prev)
        if entry_id in self.anchors:
            self.anchored.add(entry_id)
        if self.first_bad is None:
            if prev != self.expected_prev:
                self._flag(entry_id, "prev_hash does not link to the entry before it")
            elif computed != stored:
                self._flag(entry_id, "stored hash does not match its content")
            elif self.anchors.get(entry_id, stored) != stored:
                # a consistent rewrite of the chain: only an anchor kept elsewhere shows it
                self._flag(entry_id, "hash differs from the anchor recorded earlier")
            else:
                problem = self._signature_problem(entry_id, stored, signature)
                if problem is not None:
                    self._flag(entry_id, problem)
        self.signed += signature is not None
        self.unsigned += signature is None
        self.expected_prev = stored
        self.last_hash = stored
        for side, sign in ((draft.frm, -1), (draft.to, 1)):
            if side is not None:
                key = BalanceKey(draft.lot_id, side.location_id, side.status)
                self.balances[key] = self.balances.get(key, 0) + sign * draft.quantity
        self.derivation.feed(entry_id, draft)

    def _signature_problem(
        self, entry_id: int, stored: bytes, signature: tuple[str, bytes] | None
    ) -> str | None:
        if signature is None:
            if self.signed:
                return "not signed, though entries before it are (appended by someone else?)"
            required = self.keys is not None and entry_id >= self.unsigned_before
            return "not signed" if required else None
        kid, value = signature
        problem = None
        if self.keys is not None and kid not in self.keys.keys:
            problem = f"signed by key {kid}, which is not a trusted key"
        elif self.keys is not None and not self.keys.entry_ok(kid, stored, value):
            problem = "signature does not verify (forged, or re-hashed after it was signed)"
        return problem

    def unreadable(self, entry_id: int, stored: bytes, why: str) -> None:
        """An entry whose fields are no longer valid names: tampered by definition."""
        self.count += 1
        if self.first_bad is None:
            self._flag(entry_id, f"unreadable ({why})")
        self.expected_prev = stored
        self.last_hash = stored

    def _flag(self, entry_id: int, problem: str) -> None:
        self.first_bad = entry_id
        self.problem = f"entry {entry_id}: {problem}"


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    first_tampered: int | None
    chain_problem: str | None
    balance_problems: tuple[str, ...]
    head_problem: str | None
    derived_problems: tuple[str, ...] = ()
    """Lot statuses and unit places that differ from what the entries say."""
    guard_problems: tuple[str, ...] = ()
    """Append-only triggers or roles' privileges not in place."""
    signed: int = 0
    signatures_checked: bool = False

    @property
    def ok(self) -> bool:
        return (
            self.first_tampered is None
            and not self.balance_problems
            and self.head_problem is None
            and self.chain_problem is None
            and not self.derived_problems
            and not self.guard_problems
        )


ENTRY_COLUMNS = (
    "entry_id, recorded_at, effective_at, movement, lot_id, epc_uri, quantity, from_location,"
    " from_status, to_location, to_status, actor, reason, reference, counterparty,"
    " signature_meaning, prev_hash, entry_hash"
)
SIGNATURE_COLUMNS = "signing_key_id, signature"
"""Selected after ``ENTRY_COLUMNS`` (indexes 18 and 19)."""


def draft_from_row(row: TupleRow) -> Draft:
    """The movement a ``SELECT ENTRY_COLUMNS`` row holds (raises ValueError on unknown names)."""
    fl, fs, tl, ts = row[7], row[8], row[9], row[10]
    return Draft(
        movement=Movement(row[3]),
        lot_id=int(row[4]),
        epc_uri=row[5],
        quantity=int(row[6]),
        effective_at=cast(datetime, row[2]),
        frm=Place(str(fl), Status(fs)) if fl is not None else None,
        to=Place(str(tl), Status(ts)) if tl is not None else None,
        actor=str(row[11]),
        reason=row[12],
        reference=row[13],
        counterparty=row[14],
        signature_meaning=row[15],
    )


async def verify(
    conn: AsyncConnection[TupleRow],
    anchors: dict[int, bytes] | None = None,
    *,
    keys: TrustedKeys | None = None,
    unsigned_before: int = 0,
) -> VerifyReport:
    """Recomputes everything; read-only. Run it in a REPEATABLE READ transaction for a snapshot.

    ``anchors`` (entry id → hash, from ``head`` taken earlier and kept outside the database)
    catch what a hash chain alone cannot: the whole chain rewritten consistently after a change.
    ``keys`` are the service's public keys (see the module docstring).
    """
    checker = ChainChecker(anchors=dict(anchors or {}), keys=keys, unsigned_before=unsigned_before)
    async with conn.cursor(name="ledger_verify") as cur:
        cur.itersize = 5000  # fetch in large batches: the check is CPU-bound, not round-trip bound
        await cur.execute(
            f"SELECT {ENTRY_COLUMNS}, {SIGNATURE_COLUMNS} FROM ledger_entries ORDER BY entry_id"
        )
        async for row in cur:
            try:
                draft = draft_from_row(row)
            except ValueError as err:  # a tampered movement or status name
                checker.unreadable(int(row[0]), bytes(row[17]), str(err))
                continue
            signature = (str(row[18]), bytes(row[19])) if row[19] is not None else None
            checker.feed(
                int(row[0]), draft, row[1], bytes(row[16]), bytes(row[17]), signature=signature
            )
    stored = await conn.execute(
        "SELECT lot_id, location_id, status, quantity FROM balances WHERE quantity <> 0"
    )
    table = {
        BalanceKey(int(lot), str(loc), Status(st)): int(q)
        for lot, loc, st, q in await stored.fetchall()
    }
    replayed = {k: v for k, v in checker.balances.items() if v != 0}
    problems = tuple(
        f"lot {k.lot_id} at {k.location_id} {k.status.value}: ledger says "
        f"{replayed.get(k, 0)}, balances table says {table.get(k, 0)}"
        for k in sorted(set(table) | set(replayed), key=lambda k: (k.lot_id, k.location_id))
        if table.get(k, 0) != replayed.get(k, 0)
    )
    head_cur = await conn.execute("SELECT last_hash FROM ledger_head")
    head_row = await head_cur.fetchone()
    head_problem = None
    if head_row is None or bytes(head_row[0]) != checker.last_hash:
        head_problem = "the chain head does not match the last entry (entries removed?)"
    missing = sorted(set(checker.anchors) - checker.anchored)
    if missing and checker.first_bad is None:
        checker.first_bad = missing[0]
        checker.problem = f"entry {missing[0]}: anchored earlier but no longer in the ledger"
    return VerifyReport(
        checker.count,
        checker.first_bad,
        checker.problem,
        problems,
        head_problem,
        derived_problems=tuple(await _derived_problems(conn, checker.derivation)),
        guard_problems=tuple(await check_guards(conn)),
        signed=checker.signed,
        signatures_checked=keys is not None,
    )


async def _derived_problems(conn: AsyncConnection[TupleRow], derivation: Derivation) -> list[str]:
    problems = [derivation.impossible] if derivation.impossible else []
    cur = await conn.execute("SELECT lot_id, status FROM lots")
    problems += derivation.lot_problems({int(lot): str(st) for lot, st in await cur.fetchall()})
    cur = await conn.execute(
        "SELECT epc_uri, location_id, status FROM units WHERE location_id IS NOT NULL"
        " AND unit_kind = 'sgtin'"
    )
    placed = {str(e): Place(str(loc), Status(st)) for e, loc, st in await cur.fetchall()}
    problems += derivation.unit_problems(dict(placed))
    return problems


async def head(conn: AsyncConnection[TupleRow]) -> tuple[int | None, bytes]:
    """The last entry's id and hash: print it and keep it elsewhere to anchor the chain."""
    cur = await conn.execute("SELECT last_entry_id, last_hash FROM ledger_head")
    row = await cur.fetchone()
    if row is None:
        return None, GENESIS
    return (int(row[0]) if row[0] is not None else None), bytes(row[1])
