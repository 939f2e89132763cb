"""``/v1/sites/{site_id}/alarm-…``: a site's notification channels, contacts, groups, on-call
rotas and escalation policies (administrators), and who is on call (everyone signed in).

Channel URLs may hold credentials: they are accepted on ``PUT`` and never returned; responses
and the audit trail carry the masked form. Documents are refused when they name a channel,
contact, group or rota the site does not have, and deletions while another document names them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, Field

from cloud.alarms import ConfigError, NotFoundError
from cloud.alarms.channels import AppriseNotifier
from cloud.alarms.config_store import (
    ChannelRow,
    DocKind,
    delete_item,
    directory,
    get_channel,
    list_channels,
    list_docs,
    put_channel,
    put_doc,
    require_site,
)
from cloud.alarms.message import zone
from cloud.alarms.policy import Contact, Group, Policy
from cloud.alarms.rota import Rota, next_handover, on_call
from cloud.api.deps import IdPath, Pool, Settings
from cloud.auth.deps import Admin, Viewer
from protocols.records import UtcDatetime

router = APIRouter(prefix="/v1/sites/{site_id}", tags=["alarms"])

NamePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str | None, Field(min_length=3, max_length=4000)] = None
    """An Apprise URL (``mailtos://…``, ``ntfys://…``, ``msteams://…``, ``json://…``). Omit it to
    keep the stored one (to re-enable a channel)."""
    enabled: bool = True


class ChannelOut(BaseModel):
    name: str
    service: str
    masked_url: str
    enabled: bool
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None


class TestOut(BaseModel):
    ok: bool
    error: str | None


class DocOut(BaseModel):
    name: str
    spec: dict[str, Any]
    updated_by: str
    updated_at: datetime


class OnCallOut(BaseModel):
    rota: str
    contact: str
    until: datetime


def _out(row: ChannelRow) -> ChannelOut:
    return ChannelOut(
        name=row.name, service=row.service, masked_url=row.masked_url, enabled=row.enabled,
        consecutive_failures=row.consecutive_failures, last_success_at=row.last_success_at,
        last_failure_at=row.last_failure_at, last_error=row.last_error,
    )  # fmt: skip


@asynccontextmanager
async def _room(pool: Pool) -> AsyncIterator[AsyncConnection[TupleRow]]:
    """One transaction, with the room's errors as HTTP answers."""
    try:
        async with pool.connection() as conn, conn.transaction():
            yield conn
    except NotFoundError as err:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from err
    except ConfigError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err


@router.get("/alarm-channels")
async def get_channels(site_id: IdPath, pool: Pool, _: Admin) -> list[ChannelOut]:
    async with _room(pool) as conn:
        await require_site(conn, site_id)
        return [_out(row) for row in await list_channels(conn, site_id)]


@router.put("/alarm-channels/{name}")
async def put_channel_route(
    site_id: IdPath, name: NamePath, body: ChannelIn, pool: Pool, user: Admin
) -> ChannelOut:
    """Creates or replaces a channel; the URL is checked by Apprise and never returned."""
    async with _room(pool) as conn:
        row = await put_channel(conn, site_id, name, url=body.url, enabled=body.enabled,
                                actor=user.name)  # fmt: skip
    return _out(row)


@router.delete("/alarm-channels/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_channel(site_id: IdPath, name: NamePath, pool: Pool, user: Admin) -> Response:
    """Disables the channel (its delivery log stays); refused while a contact or policy names it."""
    async with _room(pool) as conn:
        await delete_item(conn, site_id, "channel", name, actor=user.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/alarm-channels/{name}/test")
async def test_channel(
    site_id: IdPath, name: NamePath, pool: Pool, settings: Settings, user: Admin
) -> TestOut:
    """Sends a test message on the channel now, to check the URL and the way to the person."""
    async with _room(pool) as conn:
        await get_channel(conn, site_id, name)
        cur = await conn.execute(
            "SELECT url FROM alarm_channels WHERE site_id = %s AND name = %s", (site_id, name)
        )
        row = await cur.fetchone()
    assert row is not None
    outcome = await AppriseNotifier(settings.alarms.send_timeout).send(
        str(row[0]),
        f"[TEST] coldtrace channel {name}",
        f"A test message for site {site_id}, sent by {user.name}. No action is needed.",
    )
    return TestOut(ok=outcome.ok, error=outcome.error)


_DOC_PATHS: dict[str, tuple[DocKind, type[BaseModel]]] = {
    "alarm-contacts": ("contact", Contact),
    "alarm-groups": ("group", Group),
    "on-call-rotas": ("rota", Rota),
    "alarm-policies": ("policy", Policy),
}


def _doc_routes(path: str, kind: DocKind, model: type[BaseModel]) -> None:
    async def get_all(site_id: IdPath, pool: Pool, _: Admin) -> list[DocOut]:
        async with _room(pool) as conn:
            await require_site(conn, site_id)
            rows = await list_docs(conn, site_id, kind)
        return [DocOut(name=n, spec=s, updated_by=b, updated_at=a) for n, s, b, a in rows]

    async def delete(site_id: IdPath, name: NamePath, pool: Pool, user: Admin) -> Response:
        async with _room(pool) as conn:
            await delete_item(conn, site_id, kind, name, actor=user.name)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    router.add_api_route(f"/{path}", get_all, methods=["GET"], summary=f"List {kind} documents")
    router.add_api_route(f"/{path}/{{name}}", _put_route(kind, model), methods=["PUT"],
                         summary=f"Create or replace a {kind}")  # fmt: skip
    router.add_api_route(f"/{path}/{{name}}", delete, methods=["DELETE"], status_code=204,
                         summary=f"Delete a {kind}", response_class=Response)  # fmt: skip


def _put_route(kind: DocKind, model: type[BaseModel]) -> Any:
    # FastAPI reads the body type from the annotation, so each kind gets its own function.
    if model is Contact:

        async def put_contact(site_id: IdPath, name: NamePath, body: Contact, pool: Pool,
                              user: Admin) -> DocOut:  # fmt: skip
            return await _put(pool, site_id, kind, name, body, actor=user.name)

        return put_contact
    if model is Group:

        async def put_group(site_id: IdPath, name: NamePath, body: Group, pool: Pool,
                            user: Admin) -> DocOut:  # fmt: skip
            return await _put(pool, site_id, kind, name, body, actor=user.name)

        return put_group
    if model is Rota:

        async def put_rota(site_id: IdPath, name: NamePath, body: Rota, pool: Pool,
                           user: Admin) -> DocOut:  # fmt: skip
            return await _put(pool, site_id, kind, name, body, actor=user.name)

        return put_rota

    async def put_policy(site_id: IdPath, name: NamePath, body: Policy, pool: Pool,
                         user: Admin) -> DocOut:  # fmt: skip
        return await _put(pool, site_id, kind, name, body, actor=user.name)

    return put_policy


async def _put(
    pool: Pool, site_id: str, kind: DocKind, name: str, body: BaseModel, *, actor: str
) -> DocOut:
    async with _room(pool) as conn:
        await put_doc(conn, site_id, kind, name, body, actor=actor)
        rows = await list_docs(conn, site_id, kind)
    n, s, b, a = next(r for r in rows if r[0] == name)
    return DocOut(name=n, spec=s, updated_by=b, updated_at=a)


for _path, (_kind, _model) in _DOC_PATHS.items():
    _doc_routes(_path, _kind, _model)


@router.get("/on-call")
async def get_on_call(
    site_id: IdPath, pool: Pool, _: Viewer, at: UtcDatetime | None = None
) -> list[OnCallOut]:
    """Who each rota has on call at ``at`` (now by default), and until when."""
    when = at or datetime.now(UTC)
    async with _room(pool) as conn:
        tz = zone(await require_site(conn, site_id))
        book = await directory(conn, site_id)
    return [
        OnCallOut(rota=name, contact=on_call(rota, when, tz), until=next_handover(rota, when, tz))
        for name, rota in sorted(book.rotas.items())
    ]
