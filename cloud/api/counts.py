"""``/v1/counts``: cycle counts of a location from EPCs (or tag reads over a window)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, Field, model_validator

from cloud.api.deps import Pool, Settings
from cloud.api.documents import body_schema, document_body
from cloud.api.ledger import MAX_QUANTITY, DbId, IdPath, Label, Why, http_error
from cloud.api.signatures import SignatureIn, SignatureOut, reauthenticate, signature_out
from cloud.auth.deps import Operator
from cloud.auth.service import audit
from cloud.ledger import LedgerError
from cloud.ledger.core import Status
from cloud.ledger.count_store import confirm_count, take_count
from cloud.ledger.counting import CountResult
from cloud.ledger.instant import Instant
from cloud.receiving.matching import decode_reads
from cloud.signatures.core import SignedAction
from cloud.signatures.store import ledger_mark, sign
from protocols.records import EpcHex

router = APIRouter(prefix="/v1/counts", tags=["counts"])


class Window(BaseModel):
    start: Instant
    end: Instant


class Counted(BaseModel):
    lot_id: DbId
    status: Status = Status.AVAILABLE
    quantity: Annotated[int, Field(ge=0, le=MAX_QUANTITY)]


class CountIn(BaseModel):
    location_id: Label
    epcs: Annotated[list[EpcHex], Field(max_length=100_000)] = []
    window: Window | None = None
    """Use the tags read by the readers mounted at the location over this window."""
    counted: list[Counted] = []

    @model_validator(mode="after")
    def _something(self) -> CountIn:
        if not self.epcs and self.window is None and not self.counted:
            raise ValueError("give epcs, a window of tag reads, or counted quantities")
        return self


class CountOut(BaseModel):
    count_id: int
    location_id: str
    differences: int
    matched: list[str]
    missing: list[dict[str, Any]]
    found: list[dict[str, Any]]
    unknown: list[str]
    bulk: list[dict[str, Any]]
    undecodable: list[str]


class ConfirmIn(BaseModel):
    reason: Why
    signature: SignatureIn
    """The operator's password (and code) typed again now; meaning: reviewed or approved."""


class ConfirmOut(BaseModel):
    count_id: int
    entries: int
    signature: SignatureOut


async def _window_epcs(conn: AsyncConnection[TupleRow], location_id: str, w: Window) -> list[str]:
    cur = await conn.execute(
        "SELECT DISTINCT t.epc FROM tag_reads t JOIN devices d ON d.device_id = t.reader_id"
        " WHERE d.location_id = %s AND t.time >= %s AND t.time < %s",
        (location_id, w.start, w.end),
    )
    return [str(r[0]) for r in await cur.fetchall()]


def _out(count_id: int, r: CountResult, undecodable: list[str]) -> CountOut:
    return CountOut(
        count_id=count_id,
        location_id=r.location_id,
        differences=r.differences,
        matched=list(r.matched),
        missing=[{"epc_uri": m.epc_uri, "lot_id": m.lot_id, "status": m.status} for m in r.missing],
        found=[
            {
                "epc_uri": f.epc_uri,
                "lot_id": f.lot_id,
                "ledger_place": f.place.location_id if f.place else None,
            }
            for f in r.found
        ],
        unknown=list(r.unknown),
        bulk=[
            {
                "lot_id": b.lot_id,
                "status": b.status,
                "on_record": b.on_record,
                "counted": b.counted,
                "difference": b.difference,
            }
            for b in r.bulk
        ],
        undecodable=undecodable,
    )


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=body_schema(CountIn))
async def count(
    user: Operator, body: Annotated[CountIn, document_body(CountIn)], pool: Pool
) -> CountOut:
    """Compares what was read (and counted) with what the ledger places there."""
    try:
        async with pool.connection() as conn, conn.transaction():
            epcs = list(body.epcs)
            if body.window is not None:
                epcs += await _window_epcs(conn, body.location_id, body.window)
            reads = decode_reads(epcs)
            count_id, result = await take_count(
                conn,
                location_id=body.location_id,
                reads=reads.keys,
                counted=[(c.lot_id, c.status, c.quantity) for c in body.counted],
                actor=user.name,
                at=datetime.now(UTC),
            )
            await audit(
                conn, actor=user.name, action="count.take", subject=f"count:{count_id}",
                reason=f"cycle count of {body.location_id}",
                detail={"differences": result.differences, "reads": len(reads.keys)},
            )  # fmt: skip
    except LedgerError as err:
        raise http_error(err) from err
    return _out(count_id, result, list(reads.undecodable + reads.not_trade_items))


@router.post("/{count_id}/confirm")
async def confirm(
    count_id: IdPath, body: ConfirmIn, pool: Pool, settings: Settings, user: Operator
) -> ConfirmOut:
    """Books the count's differences in the ledger, e-signed (409 if the stock moved since)."""
    action = SignedAction.COUNT_CONFIRM
    person = await reauthenticate(pool, user, body.signature, settings.accounts, action)
    try:
        async with pool.connection() as conn, conn.transaction():
            mark = await ledger_mark(conn)
            entries = await confirm_count(
                conn, count_id, actor=user.name, reason=body.reason, at=datetime.now(UTC)
            )
            signature = await sign(
                conn, person, action=action, subject=f"count:{count_id}",
                meaning=body.signature.meaning, entries_after=mark,
                content={"count_id": count_id, "reason": body.reason, "entries": entries},
            )  # fmt: skip
            await audit(
                conn, actor=user.name, action="count.confirm", subject=f"count:{count_id}",
                reason=body.reason,
                detail={"entries": entries, "signature_id": signature.signature_id},
            )  # fmt: skip
    except LedgerError as err:
        raise http_error(err) from err
    return ConfirmOut(count_id=count_id, entries=entries, signature=signature_out(signature))
