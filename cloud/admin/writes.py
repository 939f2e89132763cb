"""Master-data writes from rows of text (an admin page's form, a CSV file), audited.

Each kind (site, location, profile, product, lot, sensor) has one ``Kind``: its columns, how to
read every row of it back (``rows``, for export and the pages) and how to write one row
(``write``), inside the caller's transaction. A write compares the row with what is stored and
answers ``created``, ``updated`` or ``unchanged``; an unchanged row writes nothing and leaves no
audit entry, every other one leaves one with the values before and after and the reason. The
values are checked by the same models and store functions as the JSON API (``cloud.api
.masterdata``, ``cloud.masterdata``, ``cloud.coldchain.profiles``), so a page, a CSV file and the
API accept and refuse the same things.

Exceptions::

    RowError        the row is refused: its message says which field and why
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ValidationError

from cloud.api.ledger import LABEL
from cloud.api.masterdata import (
    LocationIn,
    LocationOut,
    LotIn,
    ProductIn,
    ProductOut,
    SensorIn,
    SensorOut,
    SiteIn,
    SiteOut,
)
from cloud.auth.service import audit
from cloud.coldchain import ProfileError
from cloud.coldchain.profiles import StorageProfile
from cloud.coldchain.store import list_profiles, upsert_custom_profile
from cloud.masterdata import MasterDataError
from cloud.masterdata.sensors import SensorMount, get_sensor, list_sensors, mount_sensor
from cloud.masterdata.store import (
    Location,
    Product,
    Site,
    create_lot,
    get_location,
    get_product,
    list_locations,
    list_products,
    list_sites,
    put_location,
    put_product,
    put_site,
)
from cloud.masterdata.values import valid_gtin14

Outcome = Literal["created", "updated", "unchanged"]
Row = Mapping[str, str]
_ID = re.compile(LABEL)
M = TypeVar("M", bound=BaseModel)


class RowError(ValueError):
    """A row that cannot be written; the message names the field and the reason."""


@dataclass(frozen=True)
class Written:
    outcome: Outcome
    key: str
    before: dict[str, Any] | None
    after: dict[str, Any]


@dataclass(frozen=True)
class Kind:
    name: str
    """``site``, ``location``, ...: the CSV file's kind and the audit action's prefix."""
    columns: tuple[str, ...]
    key: tuple[str, ...]
    rows: Callable[[AsyncConnection[TupleRow]], Awaitable[list[dict[str, str]]]]
    write: Callable[[AsyncConnection[TupleRow], Row, str, str], Awaitable[Written]]
    """``(conn, row, actor, reason)``."""


def _given(row: Row, *names: str) -> dict[str, str]:
    """The row's non-empty cells among ``names`` (an empty cell means "not given")."""
    return {n: row[n].strip() for n in names if (row.get(n) or "").strip()}


def _key(row: Row, name: str) -> str:
    value = (row.get(name) or "").strip()
    if not value or len(value) > 128 or not _ID.match(value):
        raise RowError(f"{name}: required, up to 128 printable characters")
    return value


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            where = ".".join(str(x) for x in item["loc"]) or "row"
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise RowError("; ".join(problems)) from err
    except (MasterDataError, ProfileError) as err:
        raise RowError(str(err)) from err


async def _record(
    conn: AsyncConnection[TupleRow], action: str, subject: str, *, before: BaseModel | None,
    after: BaseModel, actor: str, reason: str, key: str | None = None,
) -> Written:  # fmt: skip
    """Audits a change (the JSON API's action and subject names) and says what it was."""
    old = before.model_dump(mode="json") if before is not None else None
    new = after.model_dump(mode="json")
    key = key or subject.split(":", 1)[1]
    if old == new:
        return Written("unchanged", key, old, new)
    await audit(
        conn, actor=actor, action=action, subject=subject, reason=reason,
        detail={"before": old, "after": new},
    )  # fmt: skip
    return Written("created" if old is None else "updated", key, old, new)


# sites ---------------------------------------------------------------------------------------


async def _site_rows(conn: AsyncConnection[TupleRow]) -> list[dict[str, str]]:
    return [{"site_id": s.site_id, "name": s.name, "timezone": s.timezone}
            for s in await list_sites(conn)]  # fmt: skip


async def _write_site(
    conn: AsyncConnection[TupleRow], row: Row, actor: str, reason: str
) -> Written:
    site_id = _key(row, "site_id")
    body = _validated(SiteIn, _given(row, "name", "timezone"))
    after = SiteOut(site_id=site_id, **body.model_dump())
    found = {s.site_id: s for s in await list_sites(conn)}.get(site_id)
    before = SiteOut(**found.__dict__) if found else None
    if before != after:
        await _store(put_site(conn, Site(site_id, body.name, body.timezone)))
    return await _record(
        conn, "site.put", f"site:{site_id}", before=before, after=after, actor=actor, reason=reason
    )


async def _store(write: Awaitable[object]) -> None:
    try:
        await write
    except MasterDataError as err:
        raise RowError(str(err)) from err
    except psycopg.DataError as err:
        # a value PostgreSQL cannot hold (a NUL in a text, an interval out of range)
        raise RowError(str(err).splitlines()[0]) from err


# locations -----------------------------------------------------------------------------------


async def _location_rows(conn: AsyncConnection[TupleRow]) -> list[dict[str, str]]:
    found = await list_locations(conn, None)
    # parents before their children, so that the file imports in its own order
    depth: dict[str, int] = {}
    by_id = {loc.location_id: loc for loc in found}

    def level(loc: Location) -> int:
        if loc.location_id not in depth:
            parent = by_id.get(loc.parent_id or "")
            depth[loc.location_id] = 0 if parent is None else level(parent) + 1
        return depth[loc.location_id]

    ordered = sorted(found, key=lambda loc: (level(loc), loc.site_id, loc.location_id))
    return [{"location_id": loc.location_id, "site_id": loc.site_id,
             "parent_id": _text(loc.parent_id), "kind": loc.kind, "name": loc.name,
             "profile_id": _text(loc.profile_id)} for loc in ordered]  # fmt: skip


async def _write_location(
    conn: AsyncConnection[TupleRow], row: Row, actor: str, reason: str
) -> Written:
    location_id = _key(row, "location_id")
    body = _validated(LocationIn, _given(row, "site_id", "parent_id", "kind", "name", "profile_id"))
    after = LocationOut(location_id=location_id, **body.model_dump())
    found = await get_location(conn, location_id)
    before = LocationOut(**found.__dict__) if found else None
    if before != after:
        await _store(put_location(conn, Location(location_id=location_id, **body.model_dump())))
    return await _record(
        conn,
        "location.put",
        f"location:{location_id}",
        before=before,
        after=after,
        actor=actor,
        reason=reason,
    )


# storage profiles ----------------------------------------------------------------------------

PROFILE_COLUMNS = tuple(StorageProfile.model_fields)


async def _profile_rows(conn: AsyncConnection[TupleRow]) -> list[dict[str, str]]:
    out = []
    for profile, _standard in await list_profiles(conn):
        dumped = profile.model_dump(mode="json")
        out.append({k: _text(dumped[k]).lower() if isinstance(dumped[k], bool) else
                    _text(dumped[k]) for k in PROFILE_COLUMNS})  # fmt: skip
    return out


async def _write_profile(
    conn: AsyncConnection[TupleRow], row: Row, actor: str, reason: str
) -> Written:
    profile_id = _key(row, "profile_id")
    after = _validated(StorageProfile, _given(row, *PROFILE_COLUMNS) | {"profile_id": profile_id})
    found = {p.profile_id: (p, std) for p, std in await list_profiles(conn)}.get(profile_id)
    before = found[0] if found else None
    if before != after:
        if found is not None and found[1]:
            raise RowError(f"{profile_id!r} is a standard profile and cannot be changed")
        await _store(upsert_custom_profile(conn, after))
    return await _record(
        conn,
        "profile.put",
        f"profile:{profile_id}",
        before=before,
        after=after,
        actor=actor,
        reason=reason,
    )


# products ------------------------------------------------------------------------------------


async def _product_rows(conn: AsyncConnection[TupleRow]) -> list[dict[str, str]]:
    return [ProductOut(**p.__dict__).model_dump(mode="json") for p in await list_products(conn)]


async def _write_product(
    conn: AsyncConnection[TupleRow], row: Row, actor: str, reason: str
) -> Written:
    gtin = (row.get("gtin") or "").strip()
    body = _validated(ProductIn, _given(row, "name", "profile_id", "stability_budget"))
    try:
        valid_gtin14(gtin)
    except MasterDataError as err:
        raise RowError(f"gtin: {err}") from err
    after = ProductOut(gtin=gtin, **body.model_dump())
    found = await get_product(conn, gtin)  # one row, not the catalogue: files hold 100,000
    before = ProductOut(**found.__dict__) if found else None
    if before != after:
        await _store(put_product(conn, Product(gtin=gtin, **body.model_dump())))
    return await _record(
        conn,
        "product.put",
        f"product:{gtin}",
        before=before,
        after=after,
        actor=actor,
        reason=reason,
    )


# lots ----------------------------------------------------------------------------------------


class _LotOut(BaseModel):
    gtin: str
    lot_number: str
    expiry: str | None


async def _lot_rows(conn: AsyncConnection[TupleRow]) -> list[dict[str, str]]:
    cur = await conn.execute("SELECT gtin, lot_number, expiry FROM lots ORDER BY gtin, lot_number")
    return [{"gtin": str(g), "lot_number": str(n), "expiry": _text(x)}
            for g, n, x in await cur.fetchall()]  # fmt: skip


async def _write_lot(conn: AsyncConnection[TupleRow], row: Row, actor: str, reason: str) -> Written:
    body = _validated(LotIn, {"expiry": None} | _given(row, "gtin", "lot_number", "expiry"))
    key = f"{body.gtin}/{body.lot_number}"
    after = _LotOut(gtin=body.gtin, lot_number=body.lot_number,
                    expiry=None if body.expiry is None else body.expiry.isoformat())  # fmt: skip
    cur = await conn.execute(
        "SELECT lot_id, expiry FROM lots WHERE gtin = %s AND lot_number = %s FOR UPDATE",
        (body.gtin, body.lot_number),
    )
    found = await cur.fetchone()
    if found is None:
        try:
            lot = await create_lot(conn, **body.model_dump())
        except MasterDataError as err:
            raise RowError(str(err)) from err
        return await _record(
            conn,
            "lot.create",
            f"lot:{lot.lot_id}",
            before=None,
            after=after,
            actor=actor,
            reason=reason,
            key=key,
        )
    before = _LotOut(gtin=body.gtin, lot_number=body.lot_number,
                     expiry=None if found[1] is None else found[1].isoformat())  # fmt: skip
    if before != after:
        # only the expiry of a lot is master data; its status belongs to the ledger
        await conn.execute("UPDATE lots SET expiry = %s WHERE lot_id = %s", (body.expiry, found[0]))
    return await _record(
        conn,
        "lot.expiry",
        f"lot:{found[0]}",
        before=before,
        after=after,
        actor=actor,
        reason=reason,
        key=key,
    )


# sensors -------------------------------------------------------------------------------------


async def _sensor_rows(conn: AsyncConnection[TupleRow]) -> list[dict[str, str]]:
    return [
        {k: _text(v) for k, v in SensorOut(**s.__dict__).model_dump(mode="json").items()}
        for s in await list_sensors(conn)
    ]


async def _write_sensor(
    conn: AsyncConnection[TupleRow], row: Row, actor: str, reason: str
) -> Written:
    sensor_id = _key(row, "sensor_id")
    data: dict[str, Any] = {"location_id": None} | _given(
        row, "location_id", "mounted_at", "description"
    )
    body = _validated(SensorIn, data)
    after = SensorOut(sensor_id=sensor_id, **body.model_dump())
    found = await get_sensor(conn, sensor_id)
    before = SensorOut(**found.__dict__) if found else None
    if before != after:
        await _store(mount_sensor(conn, SensorMount(sensor_id=sensor_id, **body.model_dump())))
    return await _record(
        conn,
        "sensor.mount",
        f"sensor:{sensor_id}",
        before=before,
        after=after,
        actor=actor,
        reason=reason,
    )


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("site", ("site_id", "name", "timezone"), ("site_id",), _site_rows, _write_site),
        Kind("location", ("location_id", "site_id", "parent_id", "kind", "name", "profile_id"),
             ("location_id",), _location_rows, _write_location),
        Kind("profile", PROFILE_COLUMNS, ("profile_id",), _profile_rows, _write_profile),
        Kind("product", ("gtin", "name", "profile_id", "stability_budget"), ("gtin",),
             _product_rows, _write_product),
        Kind("lot", ("gtin", "lot_number", "expiry"), ("gtin", "lot_number"), _lot_rows,
             _write_lot),
        Kind("sensor", ("sensor_id", "location_id", "mounted_at", "description"),
             ("sensor_id",), _sensor_rows, _write_sensor),
    )
}  # fmt: skip
"""Every kind of master data the pages and CSV files write, by name."""
