"""``/v1/asns``: advance ship notices (JSON, CSV, X12 856) and the receiving records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from pydantic import BaseModel

from cloud.api.deps import Pool
from cloud.api.documents import body_schema, document_body
from cloud.api.ledger import IdPath, IdQuery, LabelQuery
from cloud.auth.deps import Operator, Viewer
from cloud.auth.service import audit
from cloud.receiving import AsnConflictError, AsnFormatError, AsnRejectedError
from cloud.receiving.asn import AsnIn
from cloud.receiving.desadv import parse_desadv
from cloud.receiving.imports import parse_csv, parse_x12_856
from cloud.receiving.store import AsnSummary, close_asn, create_asn, get_asn, list_asns, receipts

router = APIRouter(prefix="/v1", tags=["receiving"])

Reason = Annotated[str | None, Header(alias="X-Coldtrace-Reason", max_length=500)]


class AsnOut(BaseModel):
    asn_id: int
    site_id: str
    reference: str
    supplier: str | None
    expected_at: datetime | None
    status: str
    items: int
    received: int

    @classmethod
    def of(cls, s: AsnSummary) -> AsnOut:
        return cls(**s.__dict__)


class ReceiptOut(BaseModel):
    receipt_id: int
    passage_id: str
    door_id: str
    location_id: str | None
    direction: str
    at: datetime
    asn_ids: list[int]
    received: int
    outcome: str
    # set when tagged units were received per a read container's label without their own tag
    # being read (summary "unconfirmed"): a person should count that container
    needs_verification: bool = False
    summary: dict[str, Any]


async def _store(pool: Pool, asns: list[AsnIn], actor: str, reason: str | None) -> list[AsnOut]:
    try:
        async with pool.connection() as conn, conn.transaction():
            out: list[AsnOut] = []
            for asn in asns:
                asn_id = await create_asn(conn, asn)
                await audit(
                    conn,
                    actor=actor,
                    action="asn.create",
                    subject=f"asn:{asn_id}",
                    reason=reason or "ASN received from supplier",
                    detail={"reference": asn.reference, "site_id": asn.site_id},
                )
                summary = await get_asn(conn, asn_id)
                assert summary is not None
                out.append(AsnOut.of(summary))
            return out
    except AsnConflictError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except AsnRejectedError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err


@router.post("/asns", status_code=status.HTTP_201_CREATED, openapi_extra=body_schema(AsnIn))
async def post_asn(
    user: Operator,
    asn: Annotated[AsnIn, document_body(AsnIn)],
    pool: Pool,
    reason: Reason = None,
) -> AsnOut:
    # The role check comes first: the body is read only for a known operator.
    return (await _store(pool, [asn], user.name, reason))[0]


@router.post(
    "/asns/import",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
async def import_asns(
    request: Request,
    pool: Pool,
    user: Operator,
    format: Annotated[Literal["csv", "x12-856", "desadv"], Query()],
    reason: Reason = None,
) -> list[AsnOut]:
    """Imports ASNs from a CSV document, one X12 856 transaction set or one EANCOM DESADV."""
    # Read after the role check; the request-limit middleware holds it to the document limit
    # (413) and its time limits as it streams.
    raw = await request.body()
    try:
        document = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "document is not UTF-8") from err
    try:
        if format == "csv":
            asns = parse_csv(document)
        elif format == "x12-856":
            asns = [parse_x12_856(document)]
        else:
            asns = [parse_desadv(document)]
    except AsnFormatError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return await _store(pool, asns, user.name, reason or f"ASN import ({format})")


@router.get("/asns")
async def get_asns(
    pool: Pool,
    _: Viewer,
    site_id: LabelQuery = None,
    state: Literal["open", "received", "closed"] | None = Query(None, alias="status"),
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AsnOut]:
    async with pool.connection() as conn:
        return [AsnOut.of(s) for s in await list_asns(conn, site_id, state, limit)]


@router.get("/asns/{asn_id}")
async def get_one_asn(asn_id: IdPath, pool: Pool, _: Viewer) -> AsnOut:
    async with pool.connection() as conn:
        found = await get_asn(conn, asn_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ASN {asn_id}")
    return AsnOut.of(found)


@router.post("/asns/{asn_id}/close")
async def close(asn_id: IdPath, pool: Pool, user: Operator, reason: Reason = None) -> AsnOut:
    async with pool.connection() as conn, conn.transaction():
        if not await close_asn(conn, asn_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no open ASN {asn_id}")
        await audit(
            conn, actor=user.name, action="asn.close", subject=f"asn:{asn_id}",
            reason=reason or "closed by operator",
        )  # fmt: skip
        found = await get_asn(conn, asn_id)
    assert found is not None
    return AsnOut.of(found)


@router.get("/receipts")
async def get_receipts(
    pool: Pool,
    _: Viewer,
    asn_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ReceiptOut]:
    async with pool.connection() as conn:
        rows = await receipts(conn, asn_id=asn_id, limit=limit)
    return [ReceiptOut(**r) for r in rows]
