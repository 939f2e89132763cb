"""``/v1/recalls/lot/{gtin}/{lot}``: where every unit of a lot is, and the recall hold."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel

from cloud.api.deps import Pool, Settings
from cloud.api.ledger import LABEL, Label, Why, effective, http_error
from cloud.api.signatures import SignatureIn, SignatureOut, reauthenticate, shown, signature_out
from cloud.auth.deps import Qa, Viewer
from cloud.auth.service import audit
from cloud.ledger import LedgerError
from cloud.ledger.instant import Instant
from cloud.recall import LotNotFoundError
from cloud.recall import service as recall
from cloud.signatures.core import SignedAction
from cloud.signatures.store import ledger_mark, sign

router = APIRouter(prefix="/v1/recalls", tags=["recall"])

GtinPath = Annotated[str, Path(pattern=r"^[0-9]{14}$")]
LotPath = Annotated[str, Path(min_length=1, max_length=128, pattern=LABEL)]


class RecallOut(BaseModel):
    lot_id: int
    gtin: str
    lot_number: str
    product: str
    expiry: date | None
    status: str
    on_hand: list[dict[str, Any]]
    in_transit: list[dict[str, Any]]
    units: list[dict[str, Any]]
    containers: list[dict[str, Any]]
    issued: list[dict[str, Any]]
    excursions: list[dict[str, Any]]
    exposure: dict[str, Any] | None
    signatures: list[SignatureOut]
    """E-signatures on the lot: recall holds and dispositions."""
    answered_in_ms: float


class RecallIn(BaseModel):
    reason: Why
    reference: Label
    signature: SignatureIn
    """QA's password (and code) typed again now; meaning: approved."""
    effective_at: Instant | None = None


class RecallHoldOut(BaseModel):
    entries: int
    signature: SignatureOut
    recall: RecallOut


async def _view(conn: AsyncConnection[TupleRow], gtin: str, lot_number: str) -> RecallOut:
    started = datetime.now(UTC)
    lot = await recall.find_lot(conn, gtin, lot_number)
    held = await recall.on_hand(conn, lot.lot_id)
    exposure = await recall.exposure_summary(conn, lot.lot_id, started)
    return RecallOut(
        lot_id=lot.lot_id,
        gtin=lot.gtin,
        lot_number=lot.lot_number,
        product=lot.product,
        expiry=lot.expiry,
        status=lot.status,
        on_hand=[h for h in held if h["location_kind"] != "transit"],
        in_transit=[h for h in held if h["location_kind"] == "transit"],
        units=await recall.units(conn, lot.lot_id),
        containers=await recall.containers(conn, lot.lot_id),
        issued=await recall.issued(conn, lot.lot_id),
        excursions=await recall.excursions_during_stays(conn, lot.lot_id),
        exposure=exposure,
        signatures=await shown(conn, f"lot:{lot.lot_id}"),
        answered_in_ms=(datetime.now(UTC) - started).total_seconds() * 1000,
    )


@router.get("/lot/{gtin}/{lot_number}")
async def get_recall(gtin: GtinPath, lot_number: LotPath, pool: Pool, _: Viewer) -> RecallOut:
    try:
        async with pool.connection() as conn:
            return await _view(conn, gtin, lot_number)
    except LotNotFoundError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err


@router.post("/lot/{gtin}/{lot_number}")
async def post_recall(
    gtin: GtinPath, lot_number: LotPath, body: RecallIn, pool: Pool, *, settings: Settings,
    user: Qa,
) -> RecallHoldOut:  # fmt: skip
    """Puts everything of the lot on recall hold, e-signed, in one transaction."""
    action = SignedAction.RECALL_HOLD
    person = await reauthenticate(pool, user, body.signature, settings.accounts, action)
    try:
        async with pool.connection() as conn, conn.transaction():
            lot = await recall.find_lot(conn, gtin, lot_number)
            mark = await ledger_mark(conn)
            effective_at = effective(body.effective_at, settings)
            entries = await recall.recall_hold(
                conn,
                lot.lot_id,
                actor=user.name,
                reason=body.reason,
                reference=body.reference,
                effective_at=effective_at,
            )
            signature = await sign(
                conn, person, action=action, subject=f"lot:{lot.lot_id}",
                meaning=body.signature.meaning, entries_after=mark,
                content={"lot_id": lot.lot_id, "gtin": gtin, "lot_number": lot_number,
                         "reason": body.reason, "reference": body.reference,
                         "effective_at": effective_at.isoformat()},
            )  # fmt: skip
            await audit(
                conn, actor=user.name, action="recall.hold", subject=f"lot:{lot.lot_id}",
                reason=body.reason, detail={"reference": body.reference, "entries": entries,
                                            "signature_id": signature.signature_id},
            )  # fmt: skip
            view = await _view(conn, gtin, lot_number)
    except LotNotFoundError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except LedgerError as err:
        raise http_error(err) from err
    return RecallHoldOut(entries=entries, signature=signature_out(signature), recall=view)
