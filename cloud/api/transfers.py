"""``/v1/transfers``: transfer orders, FEFO picks, dispatch, the door's record, transit verdict."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field

from cloud.api.deps import Pool, Settings
from cloud.api.ledger import IdPath, LabelQuery
from cloud.auth import UnauthenticatedError
from cloud.auth.deps import Operator, Viewer
from cloud.auth.model import Role
from cloud.auth.service import audit
from cloud.auth.service import authenticate as authenticate_user
from cloud.config import CloudSettings
from cloud.ingest import IngestError
from cloud.ingest.auth import authenticate as authenticate_gateway
from cloud.ledger import LedgerError
from cloud.receiving import ReceivingError
from cloud.transfers import (
    LoggerFileError,
    TransferError,
    TransferRejectedError,
    TransferStateError,
)
from cloud.transfers.dispatch import dispatch
from cloud.transfers.door_list import door_list
from cloud.transfers.figures import Tolerance
from cloud.transfers.figures_store import site_figures
from cloud.transfers.imports import import_samples
from cloud.transfers.logger_files import parse_generic, parse_logtag
from cloud.transfers.loggers import Sample, attach, judge_transfer
from cloud.transfers.picking import suggest
from cloud.transfers.store import (
    Transfer,
    TransferIn,
    allocate,
    create_transfer,
    get_transfer,
    list_transfers,
    shipped_lots,
    site_stock,
    today,
)
from cloud.transfers.transit import TransitJudgement
from cloud.transfers.withdrawal import withdraw
from protocols.door_list import DoorList

router = APIRouter(prefix="/v1", tags=["transfers"])

_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
"""Free text: no control characters (a NUL cannot be stored in PostgreSQL text)."""


class LineOut(BaseModel):
    line_no: int
    gtin: str
    lot: str | None
    quantity: int
    shipped: int


class TransitOut(BaseModel):
    """The transit's cold chain so far: time no logger covers is unknown, never in range."""

    covered: timedelta
    unknown: timedelta
    out_of_range: timedelta
    action_excursions: int
    excursions: list[dict[str, object]]


class TransferOut(BaseModel):
    transfer_id: int
    reference: str
    from_site: str
    to_site: str | None
    customer: str | None
    status: str
    transit_location_id: str
    asn_id: int | None
    min_remaining_days: int
    expected_at: datetime | None
    shipped_at: datetime | None
    received_at: datetime | None
    lines: list[LineOut]


class PickOut(BaseModel):
    line_no: int
    lot_id: int
    lot: str
    expiry: date | None
    location_id: str
    quantity: int


class SkippedOut(BaseModel):
    lot_id: int
    lot: str
    location_id: str
    quantity: int
    reason: str


class PicksOut(BaseModel):
    on: date
    picks: list[PickOut]
    short: dict[int, int]
    skipped: list[SkippedOut]


class DoorEventOut(BaseModel):
    event_id: int
    door_id: str
    passage_id: str
    at: datetime
    item: str
    quantity: int
    outcome: str
    reason: str | None


class LoggerIn(BaseModel):
    logger_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
    kind: Literal["logger", "tracker"] = "logger"
    via_gateway: bool = False
    """A tracker read by a gateway (e.g. the truck's, over MQTT) under its own sensor id."""


async def _out(pool: Pool, t: Transfer) -> TransferOut:
    async with pool.connection() as conn:
        per_lot = await shipped_lots(conn, t.transfer_id)
    done = allocate(t.lines, per_lot)
    return TransferOut(
        transfer_id=t.transfer_id, reference=t.reference, from_site=t.from_site,
        to_site=t.to_site, customer=t.customer, status=t.status,
        transit_location_id=t.transit_location_id, asn_id=t.asn_id,
        min_remaining_days=t.min_remaining.days, expected_at=t.expected_at,
        shipped_at=t.shipped_at, received_at=t.received_at,
        lines=[
            LineOut(line_no=ln.line_no, gtin=ln.gtin, lot=ln.lot_number, quantity=ln.quantity,
                    shipped=done[ln.line_no])
            for ln in t.lines
        ],
    )  # fmt: skip


async def _get(pool: Pool, transfer_id: int) -> Transfer:
    async with pool.connection() as conn:
        t = await get_transfer(conn, transfer_id)
    if t is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no transfer {transfer_id}")
    return t


@router.post("/transfers", status_code=status.HTTP_201_CREATED)
async def post_transfer(user: Operator, order: TransferIn, pool: Pool) -> TransferOut:
    try:
        async with pool.connection() as conn, conn.transaction():
            transfer_id = await create_transfer(conn, order)
            await audit(
                conn, actor=user.name, action="transfer.create", subject=f"transfer:{transfer_id}",
                reason="transfer ordered", detail={"reference": order.reference},
            )  # fmt: skip
    except TransferRejectedError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return await _out(pool, await _get(pool, transfer_id))


@router.get("/transfers")
async def get_transfers(
    _: Viewer,
    pool: Pool,
    site_id: LabelQuery = None,
    state: Annotated[
        Literal["open", "in_transit", "received", "delivered", "cancelled"] | None,
        Query(alias="status"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[TransferOut]:
    async with pool.connection() as conn:
        found = await list_transfers(conn, site_id=site_id, status=state, limit=limit)
    return [await _out(pool, t) for t in found]


@router.get("/transfers/{transfer_id}")
async def get_one(_: Viewer, transfer_id: IdPath, pool: Pool) -> TransferOut:
    return await _out(pool, await _get(pool, transfer_id))


@router.get("/transfers/{transfer_id}/picks")
async def get_picks(
    _: Viewer, transfer_id: IdPath, pool: Pool, on: Annotated[date | None, Query()] = None
) -> PicksOut:
    """First-expiry-first-out picks from the sending site's stock for what is still open."""
    t = await _get(pool, transfer_id)
    day = on or today(datetime.now(UTC))
    async with pool.connection() as conn:
        stock = await site_stock(conn, t.from_site, sorted({ln.gtin for ln in t.lines}))
    s = suggest(t.lines, stock, on=day, min_remaining=t.min_remaining)
    return PicksOut(
        on=day,
        picks=[
            PickOut(line_no=p.line_no, lot_id=p.lot_id, lot=p.lot_number, expiry=p.expiry,
                    location_id=p.location_id, quantity=p.quantity)
            for p in s.picks
        ],
        short=s.short,
        skipped=[
            SkippedOut(lot_id=k.lot_id, lot=k.lot_number, location_id=k.location_id,
                       quantity=k.quantity, reason=k.reason)
            for k in s.skipped
        ],
    )  # fmt: skip


MAX_DOOR_EVENTS = 10_000


@router.get("/transfers/{transfer_id}/door-events")
async def get_door_events(
    _: Viewer,
    transfer_id: IdPath,
    pool: Pool,
    outcome: Annotated[Literal["shipped", "blocked"] | None, Query()] = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_DOOR_EVENTS)] = MAX_DOOR_EVENTS,
) -> list[DoorEventOut]:
    """The units the outbound door let through or blocked for this transfer (with why), by
    event id: at most ``limit``; a full page continues with ``after`` = its last ``event_id``
    (every passage of the door adds events, so the list grows with what gateways send)."""
    await _get(pool, transfer_id)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT event_id, door_id, passage_id, at, item, quantity, outcome, reason"
            " FROM transfer_door_events WHERE transfer_id = %s"
            " AND (%s::text IS NULL OR outcome = %s) AND event_id > %s ORDER BY event_id"
            " LIMIT %s",
            (transfer_id, outcome, outcome, after, limit),
        )
        rows = await cur.fetchall()
    names = list(DoorEventOut.model_fields)
    return [DoorEventOut.model_validate(dict(zip(names, r, strict=True))) for r in rows]


@router.post("/transfers/{transfer_id}/dispatch")
async def post_dispatch(user: Operator, transfer_id: IdPath, pool: Pool) -> TransferOut:
    """Closes the loading; the receiving site gets an ASN of what is in transit."""
    try:
        async with pool.connection() as conn, conn.transaction():
            t = await get_transfer(conn, transfer_id, lock=True)
            if t is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no transfer {transfer_id}")
            asn_id = await dispatch(conn, t, datetime.now(UTC))
            await audit(
                conn, actor=user.name, action="transfer.dispatch",
                subject=f"transfer:{transfer_id}", reason="loading closed",
                detail={"asn_id": asn_id},
            )  # fmt: skip
    except TransferStateError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    except (TransferError, ReceivingError) as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return await _out(pool, await _get(pool, transfer_id))


@router.post("/transfers/{transfer_id}/loggers", status_code=status.HTTP_201_CREATED)
async def post_logger(
    user: Operator, transfer_id: IdPath, logger: LoggerIn, pool: Pool
) -> dict[str, str]:
    """A logger or live tracker travels with the shipment (mounted at its transit location)."""
    async with pool.connection() as conn, conn.transaction():
        t = await get_transfer(conn, transfer_id, lock=True)
        if t is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no transfer {transfer_id}")
        at = datetime.now(UTC) if logger.via_gateway else None
        try:
            sensor = await attach(conn, t, logger.logger_id, logger.kind, via_gateway=at)
        except TransferError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
        await audit(
            conn, actor=user.name, action="transfer.logger", subject=f"transfer:{transfer_id}",
            reason=f"{logger.kind} {logger.logger_id} attached", detail={},
        )  # fmt: skip
    return {"sensor_id": sensor}


@router.get("/transfers/{transfer_id}/transit")
async def get_transit(_: Viewer, transfer_id: IdPath, pool: Pool) -> TransitOut | None:
    """The transit's verdict from dispatch to receipt (or now); null before dispatch."""
    t = await _get(pool, transfer_id)
    async with pool.connection() as conn:
        verdict = await judge_transfer(conn, t, until=datetime.now(UTC))
    return _transit(verdict)


ShelfParty = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$")]


class ShelfLifeIn(BaseModel):
    min_remaining_days: int = Field(ge=0, le=3650)


@router.put("/shelf-life/{party_kind}/{party_id}")
async def put_shelf_life(
    user: Operator,
    party_kind: Literal["site", "customer"],
    party_id: ShelfParty,
    rule: ShelfLifeIn,
    pool: Pool,
) -> ShelfLifeIn:
    """The minimum remaining shelf life a site or customer accepts on what it is sent."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO shelf_life_rules VALUES (%s, %s, %s) ON CONFLICT (party_kind, party_id)"
            " DO UPDATE SET min_remaining = EXCLUDED.min_remaining",
            (party_kind, party_id, timedelta(days=rule.min_remaining_days)),
        )
        await audit(
            conn, actor=user.name, action="shelf_life.set", subject=f"{party_kind}:{party_id}",
            reason=f"{rule.min_remaining_days} days", detail={},
        )  # fmt: skip
    return rule


class ImportOut(BaseModel):
    transfer_id: int
    reference: str
    sensor_id: str
    stored: int
    transit: TransitOut | None
    quarantined_lots: list[int]


def _transit(verdict: TransitJudgement | None) -> TransitOut | None:
    if verdict is None:
        return None
    return TransitOut(
        covered=verdict.covered, unknown=verdict.unknown, out_of_range=verdict.out_of_range,
        action_excursions=len(verdict.action),
        excursions=[e.__dict__ for e in verdict.excursions],
    )  # fmt: skip


async def _import(
    pool: Pool, settings: CloudSettings, user: str, logger_id: str, samples: list[Sample]
) -> ImportOut:
    horizon = settings.admission.backlog_horizon  # the same horizon as ingest's
    try:
        async with pool.connection() as conn, conn.transaction():
            done = await import_samples(
                conn, logger_id, samples, datetime.now(UTC), backlog_horizon=horizon
            )
            await audit(
                conn, actor=user, action="transfer.logger_readings",
                subject=f"transfer:{done.transfer_id}",
                reason=f"{done.stored} readings of {logger_id}",
                detail={"quarantined_lots": done.quarantined_lots},
            )  # fmt: skip
    except TransferError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    return ImportOut(
        transfer_id=done.transfer_id, reference=done.reference, sensor_id=done.sensor_id,
        stored=done.stored, transit=_transit(done.verdict),
        quarantined_lots=done.quarantined_lots,
    )  # fmt: skip


@router.post(
    "/shipment-loggers/import",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
async def import_logger_file(  # noqa: PLR0917 (query parameters)
    request: Request,
    pool: Pool,
    settings: Settings,
    user: Operator,
    format: Annotated[Literal["csv", "logtag"], Query()],
    logger_id: Annotated[
        str | None, Query(min_length=1, max_length=64, pattern=r"^[!-~]+$")
    ] = None,
    zone: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")] = "UTC",
    dayfirst: bool = False,
) -> ImportOut:
    """A logger read out on arrival: our CSV or a LogTag Analyzer export (docs/transfers.md)."""
    raw = await request.body()
    try:
        document = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "document is not UTF-8") from err
    try:
        if format == "csv":
            serial, samples = None, parse_generic(document)
        else:
            try:
                tz = ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise LoggerFileError(f"unknown time zone {zone!r}") from err
            parsed = parse_logtag(document, zone=tz, dayfirst=dayfirst)
            serial, samples = parsed.serial, parsed.samples
    except LoggerFileError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    name = logger_id or serial
    if name is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "give logger_id: the file names no serial"
        )
    if logger_id and serial and logger_id != serial:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"logger_id {logger_id!r} but the file is from serial {serial!r}",
        )
    return await _import(pool, settings, user.name, name, list(samples))


class TrackerReading(BaseModel):
    time: datetime
    celsius: float = Field(ge=-273.15, le=1000, allow_inf_nan=False)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


@router.post("/trackers/{logger_id}/readings")
async def post_tracker_readings(
    user: Operator,
    logger_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[!-~]+$")],
    readings: Annotated[list[TrackerReading], Field(min_length=1, max_length=10_000)],
    pool: Pool,
    settings: Settings,
) -> ImportOut:
    """A live tracker's readings (temperature, position when given); an action-level
    excursion quarantines what is in transit at once."""
    for r in readings:
        if r.time.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "times need a UTC offset")
    samples = [Sample(r.time.astimezone(UTC), r.celsius, r.latitude, r.longitude) for r in readings]
    return await _import(pool, settings, user.name, logger_id, samples)


class WithdrawalIn(BaseModel):
    """Scans at a point of use: RFID EPCs (hex), GS1 barcodes or Digital Link URIs."""

    location_id: Annotated[str, Field(min_length=1, max_length=128, pattern=_PRINTABLE)]
    ward: Annotated[str, Field(min_length=1, max_length=200, pattern=_PRINTABLE)]
    reference: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
    scans: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=500, pattern=_PRINTABLE)]],
        Field(min_length=1, max_length=1000),
    ]


class WithdrawalOut(BaseModel):
    issued: list[str]
    blocked: list[dict[str, str]]


@router.post("/withdrawals")
async def post_withdrawal(user: Operator, body: WithdrawalIn, pool: Pool) -> WithdrawalOut:
    """Issues what a ward withdraws; expired, quarantined, recalled or absent stock is refused."""
    try:
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT 1 FROM locations WHERE location_id = %s", (body.location_id,)
            )
            if await cur.fetchone() is None:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown location {body.location_id!r}"
                )
            done = await withdraw(
                conn, location_id=body.location_id, scans=body.scans, ward=body.ward,
                reference=body.reference, actor=user.name, at=datetime.now(UTC),
            )  # fmt: skip
            await audit(
                conn, actor=user.name, action="withdrawal", subject=f"location:{body.location_id}",
                reason=f"for {body.ward}",
                detail={"issued": len(done.issued), "blocked": len(done.blocked)},
            )  # fmt: skip
    except LedgerError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, f"ledger refused: {err}") from err
    return WithdrawalOut(
        issued=[d.epc_uri or f"1 of lot {d.lot_id}" for d in done.issued],
        blocked=[{"scan": s, "reason": r} for s, r in done.blocked],
    )


class ReorderOut(BaseModel):
    mean_daily: float
    sd_daily: float
    lead_time_days: float
    z: float
    safety_stock: float
    reorder_point: float


class ProductFiguresOut(BaseModel):
    gtin: str
    on_hand: int
    used: int
    mean_daily_use: float
    days_of_supply: float | None
    turnover_days: float | None
    stock_out_days: int
    lead_time_days: float
    lead_time_source: str
    reorder: ReorderOut | None


class ToleranceOut(BaseModel):
    """A counted item is accurate within ``units`` or ``percent`` of its book quantity,
    whichever allows more (both 0: exact)."""

    units: int
    percent: float


class FiguresOut(BaseModel):
    """Inventory figures of a site over a window of UTC days (docs/transfers.md: methods)."""

    site_id: str
    start: date
    end: date
    cycle_count_accuracy: float | None
    counted_items: int
    count_tolerance: ToleranceOut
    stock_out_rate: float | None
    on_time_receipts: float | None
    receipts_due: int
    in_transit_out: int
    in_transit_in: int
    lead_time_days: float
    lead_time_source: str
    products: list[ProductFiguresOut]


@router.get("/sites/{site_id}/figures")
async def get_figures(
    _: Viewer,
    site_id: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$")],
    pool: Pool,
    days: Annotated[int, Query(ge=2, le=730)] = 30,
    service_level: Annotated[float, Query(ge=0.5, lt=1)] = 0.95,
    lead_time_days: Annotated[float | None, Query(gt=0, le=365)] = None,
    *,
    count_tolerance_units: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    count_tolerance_percent: Annotated[float, Query(ge=0, le=100)] = 0,
) -> FiguresOut:
    """Cycle-count accuracy, stock-outs, days of supply, turnover, on-time receipts, units in
    transit, and each product's reorder point and safety stock. A counted item is accurate when
    its count equals the book, or is within ``count_tolerance_units`` or
    ``count_tolerance_percent`` of it (whichever allows more)."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM sites WHERE site_id = %s", (site_id,))
        if await cur.fetchone() is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site_id!r}")
        f = await site_figures(
            conn, site_id, now=datetime.now(UTC), days=days, service_level=service_level,
            lead_time_days=lead_time_days,
            count_tolerance=Tolerance(count_tolerance_units, count_tolerance_percent),
        )  # fmt: skip
    return FiguresOut.model_validate(
        {
            **f.__dict__,
            "count_tolerance": f.count_tolerance.__dict__,
            "products": [
                {**p.__dict__, "reorder": None if p.reorder is None else p.reorder.__dict__}
                for p in f.products
            ],
        }
    )


_DOOR_CALLERS = (Role.VIEWER, Role.OPERATOR, Role.QA)


async def _door_list_caller(request: Request, pool: Pool, site_id: str) -> None:
    """A user with a viewing role, or a gateway of ``site_id`` itself (its token, as for
    ``POST /v1/batches``); 401 or 403 otherwise."""
    challenge = {"WWW-Authenticate": "Bearer"}
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bearer token required", challenge)
    async with pool.connection() as conn:
        try:
            user = await authenticate_user(conn, token)
        except UnauthenticatedError:
            try:
                gateway = await authenticate_gateway(conn, token)
            except IngestError as err:
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, err.message, challenge) from err
            if gateway.site_id is None or not hmac.compare_digest(
                gateway.site_id.encode(), site_id.encode()
            ):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"gateway {gateway.gateway_id!r} may read its own site's door list only",
                ) from None
            return
    if not user.allows(*_DOOR_CALLERS):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "role viewer, operator, qa required")


@router.get(
    "/sites/{site_id}/door-list",
    response_model=DoorList,
    responses={304: {"description": "The list still has the ETag sent in If-None-Match"}},
)
async def get_door_list(
    request: Request,
    site_id: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$")],
    pool: Pool,
) -> Response:
    """What the site's outbound doors may let through while it loads transfers (for the
    gateway's local door alarm, ``edge.door_guard``), with an ``ETag`` over its content.

    A user with a viewing role, or a gateway of this site with its own token."""
    await _door_list_caller(request, pool, site_id)
    async with pool.connection() as conn:
        found = await door_list(conn, site_id, datetime.now(UTC))
    # generated_at changes on every call; the ETag covers what the door judges by
    content = found.model_dump_json(include={"site_id", "ordered_gtins", "blocked"})
    etag = '"' + hashlib.sha256(content.encode()).hexdigest()[:32] + '"'
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return Response(found.model_dump_json(), media_type="application/json", headers={"ETag": etag})
