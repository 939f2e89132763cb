"""``/ui/admin``: the administration pages of the dashboard, and the actions their forms send.

Signed in through the dashboard's session (``cloud.web.session``): every role sees the pages
read-only; only the admin role gets the forms, and every action checks the role again and needs
the dashboard's anti-forgery header. Actions write through the same functions as the JSON API
(``cloud.admin.writes``, ``cloud.admin.gateways``, ``cloud.auth.service``), one transaction
each, audited with the reason the form asks for. A new gateway's or user's token is answered
once, to be copied from the page; only its hash is kept.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Annotated, Any, TypeVar
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field, ValidationError

from cloud.admin import queries, views
from cloud.admin.csv_io import CsvFileError, export_csv, import_csv
from cloud.admin.gateways import (
    disable_gateway,
    move_gateway,
    register_gateway,
    rotate_gateway,
)
from cloud.admin.users import set_role
from cloud.admin.writes import KINDS, RowError
from cloud.api.deps import IdPath, Pool
from cloud.api.documents import document_body
from cloud.api.gateway_config import DoorIn, SourceIn, put_door, put_source
from cloud.api.ledger import LABEL
from cloud.api.masterdata_csv import ImportOut, report_out
from cloud.auth import UserExistsError
from cloud.auth.model import Role, User
from cloud.auth.service import add_user, audit, disable_user
from cloud.coldchain.store import list_profiles
from cloud.masterdata.sensors import list_sensors
from cloud.masterdata.store import list_locations, list_lots, list_products, list_sites
from cloud.processing.streams import (
    NoSuchStreamError,
    StreamAdminError,
    StreamBusyError,
    set_aside,
    stream_states,
)
from cloud.web.config import WebSettings
from cloud.web.pages import frame
from cloud.web.session import ActionUser, MaybeUser, remember_settings
from protocols.records import ID_PATTERN

ADMIN_VERSION = "1"
"""Bumped when admin.js or admin.css change."""
_STATIC = {"admin.js": "text/javascript", "admin.css": "text/css"}
_HEAD = (
    f"<link rel='stylesheet' href='/ui/admin/static/admin.css?v={ADMIN_VERSION}'>"
    f"<script src='/ui/admin/static/admin.js?v={ADMIN_VERSION}' defer></script>"
)
Cell = str | bool | int | float | None
_ID = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))
M = TypeVar("M", bound=BaseModel)
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # as POST /v1/users


Reason = Annotated[str, Field(min_length=1, max_length=500, pattern=LABEL)]


class ActionIn(BaseModel):
    row: dict[str, Cell] = Field(default_factory=dict, max_length=40)
    reason: Reason


class ImportIn(BaseModel):
    csv: str
    """Bounded by the route's body limit (``limits.import_bytes``), not here."""
    reason: Reason


def _text(row: dict[str, Cell]) -> dict[str, str]:
    out = {}
    for k, v in row.items():
        if isinstance(v, str) and len(v) > 2000:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{k}: too long")
        out[k] = "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return out


async def _admin(user: ActionUser) -> User:
    if not user.allows():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "role admin required")
    return user


AdminAction = Annotated[User, Depends(_admin)]


def build_admin_router(settings: WebSettings | None = None) -> APIRouter:
    router = APIRouter(
        prefix="/ui/admin", tags=["administration"], include_in_schema=False,
        dependencies=[remember_settings(settings)],
    )  # fmt: skip
    _add_pages(router)
    _add_actions(router)
    _add_files(router)
    return router


def _shell(user: User, body: str) -> HTMLResponse:
    return HTMLResponse(
        frame(
            "Administration",
            body,
            user=f"{user.name} ({user.role.value})",
            script=False,
            head=_HEAD,
        )
    )


def _add_pages(router: APIRouter) -> None:
    @router.get("", response_class=HTMLResponse)
    async def index(user: MaybeUser) -> Response:
        if user is None:
            return RedirectResponse("/ui/login", status_code=status.HTTP_303_SEE_OTHER)
        return _shell(user, views.index())

    @router.get("/{section}", response_class=HTMLResponse)
    async def section(
        section: str, pool: Pool, user: MaybeUser,
        saved: Annotated[str | None, Query(max_length=300)] = None,
    ) -> Response:  # fmt: skip
        if user is None:
            return RedirectResponse("/ui/login", status_code=status.HTTP_303_SEE_OTHER)
        titles = dict(views.SECTIONS)
        if section not in titles:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no admin page {section!r}")
        admin = user.allows()
        async with pool.connection() as conn:
            body = await _BODIES[section](conn, admin)
        notice = f"Saved: {saved}." if saved else ""
        return _shell(user, views.page(section, titles[section], body, admin=admin,
                                       notice=notice))  # fmt: skip


Conn = psycopg.AsyncConnection[Any]


async def _sites(conn: Conn, admin: bool) -> str:
    return views.sites(await list_sites(conn), admin=admin)


async def _locations(conn: Conn, admin: bool) -> str:
    profiles = [p for p, _ in await list_profiles(conn)]
    found, sites = await list_locations(conn, None), await list_sites(conn)
    return views.locations(found, sites, profiles, admin=admin)


async def _profiles(conn: Conn, admin: bool) -> str:
    return views.profiles(await list_profiles(conn), admin=admin)


async def _products(conn: Conn, admin: bool) -> str:
    ids = [p.profile_id for p, _ in await list_profiles(conn)]
    return views.products(await list_products(conn), ids, admin=admin)


async def _lots(conn: Conn, admin: bool) -> str:
    found = await list_lots(conn, gtin=None, status=None, limit=2000)
    return views.lots(found, await list_products(conn), admin=admin)


async def _sensors(conn: Conn, admin: bool) -> str:
    described = {s.sensor_id: s.description for s in await list_sensors(conn)}
    return views.sensors(
        await queries.mount_histories(conn), described, await list_locations(conn, None),
        await queries.unmounted_sensors(conn), admin=admin,
    )  # fmt: skip


async def _gateways(conn: Conn, admin: bool) -> str:
    return views.gateways(
        await queries.gateways(conn), await list_sites(conn), admin=admin
    ) + views.streams(await stream_states(conn), admin=admin)


async def _doors(conn: Conn, admin: bool) -> str:
    gateway_ids = [g.gateway_id for g in await queries.gateways(conn)]
    return views.doors(
        await queries.readers(conn), await queries.reader_sources(conn),
        await queries.doors(conn), await queries.passages(conn), gateway_ids, admin=admin,
    )  # fmt: skip


async def _users(conn: Conn, admin: bool) -> str:
    return views.users(await queries.users(conn), admin=admin)


async def _import(conn: Conn, admin: bool) -> str:
    return views.csv_page(admin=admin)


async def _audit(conn: Conn, admin: bool) -> str:
    return views.audit(await queries.audit_trail(conn))


_BODIES: dict[str, Callable[[Conn, bool], Awaitable[str]]] = {
    "sites": _sites, "locations": _locations, "profiles": _profiles, "products": _products,
    "lots": _lots, "sensors": _sensors, "gateways": _gateways, "doors": _doors,
    "users": _users, "import": _import, "audit": _audit,
}  # fmt: skip


def _add_actions(router: APIRouter) -> None:
    _add_masterdata_actions(router)
    _add_gateway_actions(router)
    _add_stream_actions(router)
    _add_user_actions(router)
    _add_door_actions(router)


def _add_masterdata_actions(router: APIRouter) -> None:
    @router.post("/api/save/{kind}")
    async def save(kind: str, body: ActionIn, pool: Pool, user: AdminAction) -> dict[str, str]:
        if kind not in KINDS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no kind {kind!r}")
        try:
            async with pool.connection() as conn, conn.transaction():
                done = await KINDS[kind].write(conn, _text(body.row), user.name, body.reason)
        except RowError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
        return {"outcome": done.outcome, "key": done.key,
                "message": f"{kind} {done.key} {done.outcome}"}  # fmt: skip

    @router.post("/api/import/{kind}")
    async def import_file(
        kind: str, user: AdminAction, body: Annotated[ImportIn, document_body(ImportIn)],
        pool: Pool, apply: Annotated[bool, Query()] = False,
    ) -> ImportOut:  # fmt: skip
        # The role check comes first: a file of up to limits.import_bytes is read only for an admin.
        if kind not in KINDS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no kind {kind!r}")
        try:
            async with pool.connection() as conn:
                found = await import_csv(conn, KINDS[kind], body.csv, actor=user.name,
                                         reason=body.reason, apply=apply)  # fmt: skip
        except CsvFileError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
        return report_out(found)


def _add_gateway_actions(router: APIRouter) -> None:
    @router.post("/api/gateways")
    async def new_gateway(body: ActionIn, pool: Pool, user: AdminAction) -> dict[str, str]:
        row = _text(body.row)
        gateway_id, site = row.get("gateway_id", "").strip(), row.get("site_id") or None
        if not gateway_id:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "gateway_id: required")
        try:
            async with pool.connection() as conn:
                token = await register_gateway(conn, gateway_id, site, actor=user.name,
                                               reason=body.reason)  # fmt: skip
        except psycopg.errors.UniqueViolation as err:
            raise HTTPException(status.HTTP_409_CONFLICT, f"gateway {gateway_id!r} exists") from err
        except psycopg.errors.ForeignKeyViolation as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no site {site!r}") from err
        except psycopg.errors.DataError as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid id") from err
        return {"token": token, "message": f"Gateway {gateway_id} registered. Its token, shown"
                " only now: put it in the agent's COLDTRACE_EDGE_TOKEN."}  # fmt: skip

    @router.post("/api/gateways/{gateway_id}/rotate")
    async def rotate(
        gateway_id: IdPath, body: ActionIn, pool: Pool, user: AdminAction
    ) -> dict[str, str]:
        try:
            async with pool.connection() as conn:
                token = await rotate_gateway(conn, gateway_id, actor=user.name, reason=body.reason)
        except LookupError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
        return {"token": token, "message": f"New token for {gateway_id}, shown only now; the"
                " old one no longer works."}  # fmt: skip

    @router.post("/api/gateways/{gateway_id}/site")
    async def move(
        gateway_id: IdPath, body: ActionIn, pool: Pool, user: AdminAction
    ) -> dict[str, str]:
        site = _id(_text(body.row), "site_id")
        try:
            async with pool.connection() as conn:
                await move_gateway(conn, gateway_id, site, actor=user.name, reason=body.reason)
        except LookupError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
        except psycopg.errors.ForeignKeyViolation as err:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no site {site!r}") from err
        return {"message": f"Gateway {gateway_id} now writes for site {site}."}

    @router.post("/api/gateways/{gateway_id}/disable")
    async def disable(
        gateway_id: IdPath, body: ActionIn, pool: Pool, user: AdminAction
    ) -> dict[str, str]:
        async with pool.connection() as conn:
            done = await disable_gateway(conn, gateway_id, actor=user.name, reason=body.reason)
        if not done:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enabled gateway {gateway_id!r}")
        return {"message": f"Gateway {gateway_id} disabled."}


def _add_stream_actions(router: APIRouter) -> None:
    @router.post("/api/streams/{gateway_id}/set-aside")
    async def set_batch_aside(
        gateway_id: IdPath, body: ActionIn, pool: Pool, user: AdminAction
    ) -> dict[str, str]:
        batch_id, boot_id = _failing_batch(_text(body.row))
        try:
            async with pool.connection() as conn:
                done = await set_aside(conn, gateway_id, boot_id=boot_id, batch_id=batch_id,
                                       reason=body.reason, actor=user.name)  # fmt: skip
        except NoSuchStreamError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
        except StreamBusyError as err:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err),
                                headers={"Retry-After": "5"}) from err  # fmt: skip
        except StreamAdminError as err:
            raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
        return {"message": f"Batch {done.batch_id} of {gateway_id} (seq {done.first_seq}"
                f"..{done.last_seq}) set aside; later batches go on."}  # fmt: skip


def _failing_batch(row: dict[str, str]) -> tuple[int, UUID | None]:
    """The batch id and (optional) boot id a set-aside form names; 422 when unusable."""
    try:
        batch_id = int(row.get("batch_id", ""))
        boot_id = UUID(row["boot_id"]) if row.get("boot_id") else None
    except ValueError:
        batch_id, boot_id = 0, None
    else:
        if 1 <= batch_id <= 2**63 - 1:
            return batch_id, boot_id
    raise HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "batch_id: the failing batch's number; boot_id: empty or the stream's UUID",
    )


def _antennas(row: dict[str, str], name: str) -> list[int]:
    try:
        return [int(x) for x in row.get(name, "").replace(" ", "").split(",") if x]
    except ValueError as err:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: antenna numbers such as 1, 2"
        ) from err


def _add_door_actions(router: APIRouter) -> None:
    """RFID readers and doors, through the gateway-configuration API's own handlers."""

    @router.post("/api/readers")
    async def reader(body: ActionIn, pool: Pool, user: AdminAction) -> dict[str, str]:
        row = _text(body.row)
        gateway_id, name = _id(row, "gateway_id"), _id(row, "name")
        settings = {"host": row.get("host", "").strip(), "port": row.get("port") or "5084",
                    "antennas": _antennas(row, "antennas") or [1, 2]}  # fmt: skip
        source = _checked(SourceIn, {"kind": "llrp", "settings": settings})
        await put_source(gateway_id, name, source, pool=pool, user=user, response=Response(),
                         reason=body.reason)  # fmt: skip
        return {"message": f"reader {name} of {gateway_id} saved"}

    @router.post("/api/doors")
    async def door(body: ActionIn, pool: Pool, user: AdminAction) -> dict[str, str]:
        row = _text(body.row)
        gateway_id, door_id = _id(row, "gateway_id"), _id(row, "door_id")
        found = _checked(DoorIn, {
            "reader": row.get("reader", "").strip(),
            "outside_antennas": _antennas(row, "outside_antennas"),
            "inside_antennas": _antennas(row, "inside_antennas")})  # fmt: skip
        await put_door(gateway_id, door_id, found, pool=pool, user=user, response=Response(),
                       reason=body.reason)  # fmt: skip
        return {"message": f"door {door_id} of {gateway_id} saved"}


def _id(row: dict[str, str], name: str) -> str:
    value = row.get(name, "").strip()
    if not _ID.fullmatch(value):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: required id")
    return value


def _checked(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err


def _add_user_actions(router: APIRouter) -> None:
    @router.post("/api/users")
    async def new_user(body: ActionIn, pool: Pool, user: AdminAction) -> dict[str, str]:
        row = _text(body.row)
        name, role = row.get("name", "").strip(), _role(row.get("role", ""))
        if not _USER_NAME.fullmatch(name):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "name: letters, digits,"
                                " . _ @ - (up to 64)")  # fmt: skip
        try:
            async with pool.connection() as conn, conn.transaction():
                token = await add_user(conn, name, role)
                await audit(conn, actor=user.name, action="user.add", subject=f"user:{name}",
                            reason=body.reason, detail={"role": role.value, "before": None,
                            "after": {"name": name, "role": role.value}})  # fmt: skip
        except UserExistsError as err:
            raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
        return {"token": token, "message": f"User {name} ({role.value}) created. Their API"
                " token, shown only now:"}  # fmt: skip

    @router.post("/api/users/{name}/role")
    async def role(name: IdPath, body: ActionIn, pool: Pool, user: AdminAction) -> dict[str, str]:
        wanted = _role(_text(body.row).get("role", ""))
        async with pool.connection() as conn, conn.transaction():
            before = await set_role(conn, name, wanted)
            if before is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {name!r}")
            await audit(conn, actor=user.name, action="user.role", subject=f"user:{name}",
                        reason=body.reason, detail={"before": {"role": before.value},
                        "after": {"role": wanted.value}})  # fmt: skip
        return {"message": f"{name} is now {wanted.value}."}

    @router.post("/api/users/{name}/disable")
    async def disable_person(
        name: IdPath, body: ActionIn, pool: Pool, user: AdminAction
    ) -> dict[str, str]:
        async with pool.connection() as conn, conn.transaction():
            if not await disable_user(conn, name):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enabled user {name!r}")
            await audit(conn, actor=user.name, action="user.disable", subject=f"user:{name}",
                        reason=body.reason, detail={"before": {"enabled": True},
                        "after": {"enabled": False}})  # fmt: skip
        return {"message": f"{name} disabled."}


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no role {value!r}") from err


def _add_files(router: APIRouter) -> None:
    @router.get("/export/{kind}")
    async def export(kind: str, pool: Pool, user: MaybeUser) -> Response:
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in at /ui/login")
        if kind not in KINDS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no kind {kind!r}")
        async with pool.connection() as conn:
            text = await export_csv(conn, KINDS[kind])
        disposition = f'attachment; filename="{kind}s.csv"'
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        text = resources.files("cloud.admin").joinpath("static", name).read_text("utf-8")
        return Response(text, media_type=_STATIC[name], headers={"Cache-Control": "max-age=3600"})
