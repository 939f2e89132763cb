"""``/v1/ledger``: entries, balances, manual movements, QA dispositions and chain verification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, Field, model_validator

from cloud.api.deps import Pool, Settings
from cloud.api.signatures import SignatureIn, SignatureOut, reauthenticate, signature_out
from cloud.auth.deps import Admin, Operator, Qa, Viewer
from cloud.auth.service import audit
from cloud.ledger import (
    InsufficientBalanceError,
    InvalidMovementError,
    LedgerError,
    NotQuarantinedError,
    UnknownLotError,
    signing,
)
from cloud.ledger.chain import verify
from cloud.ledger.core import Draft, Movement, Place, Status, expired
from cloud.ledger.instant import Instant
from cloud.ledger.release_guard import (
    confirm_needed,
    open_excursions_affecting,
    record_confirmed_release,
)
from cloud.ledger.service import dispose_lot, post
from cloud.limits.bounds import check_not_ahead
from cloud.signatures.core import STATEMENT, SignedAction
from cloud.signatures.store import ledger_mark, sign

router = APIRouter(prefix="/v1", tags=["ledger"])

MAX_ID = 2**63 - 1  # bigint
MAX_QUANTITY = 1_000_000
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
LABEL = r"^[^\x00-\x1f\x7f]+$"
Why = Annotated[str, Field(min_length=1, max_length=500, pattern=NO_NUL)]
Label = Annotated[str, Field(min_length=1, max_length=128, pattern=LABEL)]
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
LabelQuery = Annotated[str | None, Query(min_length=1, max_length=128, pattern=LABEL)]


def http_error(err: LedgerError) -> HTTPException:
    """The HTTP answer to a ledger refusal."""
    if isinstance(err, UnknownLotError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(err))
    if isinstance(err, InsufficientBalanceError | NotQuarantinedError):
        return HTTPException(status.HTTP_409_CONFLICT, str(err))
    # InvalidMovementError, and any other refusal: the request itself is wrong
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err))


class EntryOut(BaseModel):
    entry_id: int
    recorded_at: datetime
    effective_at: datetime
    movement: Movement
    lot_id: int
    epc_uri: str | None
    quantity: int
    from_location: str | None
    from_status: str | None
    to_location: str | None
    to_status: str | None
    actor: str
    reason: str | None
    reference: str | None
    counterparty: str | None
    signature_meaning: str | None
    entry_hash: str
    signature_ids: list[int]
    """E-signatures bound to this entry (``GET /v1/signatures/{id}/verify``)."""


class BalanceOut(BaseModel):
    lot_id: int
    gtin: str
    lot_number: str
    location_id: str
    status: Status
    quantity: int


ManualMovement = Literal["receive", "put_away", "move", "issue", "quarantine", "scrap"]


class MovementIn(BaseModel):
    movement: ManualMovement
    lot_id: DbId
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)] = 1
    epc_uri: Label | None = None
    from_location: Label | None = None
    from_status: Status | None = None
    to_location: Label | None = None
    to_status: Status | None = None
    reason: Why
    reference: Label | None = None
    counterparty: Annotated[str, Field(max_length=256, pattern=LABEL)] | None = None
    effective_at: Instant | None = None

    @model_validator(mode="after")
    def _sides(self) -> MovementIn:
        if (self.from_location is None) != (self.from_status is None):
            raise ValueError("from_location and from_status go together")
        if (self.to_location is None) != (self.to_status is None):
            raise ValueError("to_location and to_status go together")
        return self

    def draft(self, actor: str, effective_at: datetime) -> Draft:
        return Draft(
            Movement(self.movement),
            self.lot_id,
            self.quantity,
            effective_at,
            actor,
            frm=Place(self.from_location, self.from_status)
            if self.from_location and self.from_status
            else None,
            to=Place(self.to_location, self.to_status)
            if self.to_location and self.to_status
            else None,
            epc_uri=self.epc_uri,
            reason=self.reason,
            reference=self.reference,
            counterparty=self.counterparty,
        )


class DispositionIn(BaseModel):
    decision: Literal["release", "reject"]
    reason: Why
    signature: SignatureIn
    """The QA signer's password (and code) typed again now, and the meaning: released or
    approved for a release, rejected for a reject (cloud.api.signatures)."""
    signature_meaning: Why | None = None
    """Words kept on the ledger entries; default: the signature's meaning in words."""
    effective_at: Instant | None = None
    confirm_open_excursion: bool = False
    """A release while an excursion affecting the lot is still open: 409 without it; with it,
    the confirmation is audited in the release's transaction (as on the dashboard)."""


class DispositionOut(BaseModel):
    balances: list[BalanceOut]
    signature: SignatureOut


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    first_tampered: int | None
    chain_problem: str | None
    balance_problems: list[str]
    head_problem: str | None
    derived_problems: list[str]
    """Lot statuses and unit places that differ from what the entries say."""
    guard_problems: list[str]
    """Append-only triggers or the roles' privileges not in place."""
    signed: int
    signatures_checked: bool
    """Checked against the service's own key (a copy of it kept elsewhere is stronger:
    ``coldtrace ledger verify --public-key``)."""


_ENTRY_COLUMNS = (
    "entry_id, recorded_at, effective_at, movement, lot_id, epc_uri, quantity, from_location,"
    " from_status, to_location, to_status, actor, reason, reference, counterparty,"
    " signature_meaning, encode(entry_hash, 'hex'), coalesce((SELECT array_agg(s.signature_id"
    " ORDER BY s.signature_id) FROM e_signatures s WHERE s.entry_ids @> ARRAY[entry_id]), '{}')"
)


async def _entries(
    conn: AsyncConnection[TupleRow], lot_id: int | None, location_id: str | None, after: int,
    limit: int,
) -> list[EntryOut]:  # fmt: skip
    cur = await conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries WHERE entry_id > %(after)s"
        " AND (%(lot)s::bigint IS NULL OR lot_id = %(lot)s)"
        " AND (%(loc)s::text IS NULL OR from_location = %(loc)s OR to_location = %(loc)s)"
        " ORDER BY entry_id LIMIT %(limit)s",
        {"after": after, "lot": lot_id, "loc": location_id, "limit": limit},
    )
    names = list(EntryOut.model_fields)
    return [EntryOut(**dict(zip(names, row, strict=True))) for row in await cur.fetchall()]


@router.get("/ledger/entries")
async def entries(
    pool: Pool,
    _: Viewer,
    lot_id: IdQuery = None,
    location_id: LabelQuery = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="entry_id to continue after")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[EntryOut]:
    async with pool.connection() as conn:
        return await _entries(conn, lot_id, location_id, after, limit)


@router.get("/ledger/balances")
async def balances(
    pool: Pool, _: Viewer, location_id: LabelQuery = None, lot_id: IdQuery = None
) -> list[BalanceOut]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT b.lot_id, l.gtin, l.lot_number, b.location_id, b.status, b.quantity"
            " FROM balances b JOIN lots l USING (lot_id) WHERE b.quantity > 0"
            " AND (%(loc)s::text IS NULL OR b.location_id = %(loc)s)"
            " AND (%(lot)s::bigint IS NULL OR b.lot_id = %(lot)s)"
            " ORDER BY b.lot_id, b.location_id, b.status",
            {"loc": location_id, "lot": lot_id},
        )
        names = list(BalanceOut.model_fields)
        return [BalanceOut(**dict(zip(names, r, strict=True))) for r in await cur.fetchall()]


@router.post("/ledger/movements", status_code=status.HTTP_201_CREATED)
async def movement(body: MovementIn, pool: Pool, settings: Settings, user: Operator) -> EntryOut:
    """Books one movement; an issue of a lot past its expiry date is refused (422)."""
    draft = body.draft(user.name, effective(body.effective_at, settings))
    try:
        async with pool.connection() as conn, conn.transaction():
            if draft.movement is Movement.ISSUE:
                await _refuse_expired(conn, draft)
            [entry_id] = await post(conn, [draft])
            await audit(
                conn, actor=user.name, action=f"ledger.{body.movement}",
                subject=f"lot:{body.lot_id}", reason=body.reason, detail={"entry_id": entry_id},
            )  # fmt: skip
            [entry] = await _entries(conn, None, None, entry_id - 1, 1)
    except LedgerError as err:
        raise http_error(err) from err
    return entry


def effective(at: datetime | None, settings: Settings) -> datetime:
    """When a person's entry takes effect: now, or a time they give that is not ahead of the
    service's clock (a ledger records what happened; an entry dated 9999 would sort after
    everything ever booked)."""
    now = datetime.now(UTC)
    if at is None:
        return now
    check_not_ahead(at, now=now, skew=settings.limits.clock_skew, name="effective_at")
    return at


async def _refuse_expired(conn: AsyncConnection[TupleRow], draft: Draft) -> None:
    cur = await conn.execute("SELECT expiry FROM lots WHERE lot_id = %s", (draft.lot_id,))
    row = await cur.fetchone()
    if row is not None and expired(row[0], draft.effective_at):
        raise InvalidMovementError(f"lot {draft.lot_id} expired on {row[0]}: issue refused")


@router.post("/lots/{lot_id}/disposition")
async def disposition(
    lot_id: IdPath, body: DispositionIn, pool: Pool, settings: Settings, user: Qa
) -> DispositionOut:
    """A QA release or reject of everything of the lot in quarantine, e-signed: the ledger
    entries and the signature are written in one transaction. A release while an excursion
    affecting the lot is still open needs ``confirm_open_excursion`` (409 without)."""
    action = SignedAction(f"lot.disposition/{body.decision}")
    person = await reauthenticate(pool, user, body.signature, settings.accounts, action)
    try:
        async with pool.connection() as conn, conn.transaction():
            still_open = (
                await open_excursions_affecting(conn, lot_id) if body.decision == "release" else []
            )
            if still_open and not body.confirm_open_excursion:
                raise HTTPException(status.HTTP_409_CONFLICT, confirm_needed(still_open))
            mark = await ledger_mark(conn)
            effective_at = effective(body.effective_at, settings)
            await dispose_lot(
                conn,
                lot_id=lot_id,
                decision=body.decision,
                actor=user.name,
                reason=body.reason,
                effective_at=effective_at,
                signature_meaning=body.signature_meaning or STATEMENT[body.signature.meaning],
            )
            if still_open:
                await record_confirmed_release(
                    conn, actor=user.name, lot_id=lot_id, reason=body.reason, excursions=still_open
                )
            signature = await sign(
                conn, person, action=action, subject=f"lot:{lot_id}",
                meaning=body.signature.meaning, entries_after=mark,
                content={"lot_id": lot_id, "decision": body.decision, "reason": body.reason,
                         "effective_at": effective_at.isoformat()},
            )  # fmt: skip
    except LedgerError as err:
        raise http_error(err) from err
    return DispositionOut(
        balances=await balances(pool, user, None, lot_id), signature=signature_out(signature)
    )


@router.get("/ledger/verify")
async def verify_chain(pool: Pool, _: Admin) -> VerifyOut:
    async with pool.connection() as conn, conn.transaction():
        # one snapshot for the whole check, so concurrent appends do not look like tampering
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        signer = signing.current()
        keys = signing.TrustedKeys.of(signer.public_key) if signer is not None else None
        report = await verify(conn, keys=keys)
    return VerifyOut(
        ok=report.ok,
        entries=report.entries,
        first_tampered=report.first_tampered,
        chain_problem=report.chain_problem,
        balance_problems=list(report.balance_problems),
        head_problem=report.head_problem,
        derived_problems=list(report.derived_problems),
        guard_problems=list(report.guard_problems),
        signed=report.signed,
        signatures_checked=report.signatures_checked,
    )
