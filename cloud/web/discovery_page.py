"""``/ui/discovery``: devices that report but are mounted nowhere, and OPC-UA browsing.

A page of its own (linked from the admin pages), so it is built beside the dashboard rather
than inside it. Everyone signed in sees what is unassigned; an administrator gets a location
picker and a *Mount* button per device, and can ask a gateway to browse one of its OPC-UA
servers and read a node it found as a sensor. The actions call the same room functions as the
REST API (``cloud.gateway_config``), each in one transaction, audited.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import IdPath, Pool
from cloud.api.gateway_config import transaction
from cloud.auth.model import Role, User
from cloud.auth.service import audit
from cloud.gateway_config import browse, discovery, store
from cloud.gateway_config.build import PointRow
from cloud.web.config import WebSettings
from cloud.web.pages import e, frame, section, when
from cloud.web.session import ActionUser, MaybeUser, SessionUser, under_settings
from protocols.records import ID_PATTERN

router = APIRouter(prefix="/ui", tags=["dashboard"], include_in_schema=False)


def build_router(settings: WebSettings | None = None) -> APIRouter:
    """The page's routes with the dashboard's session settings (``COLDTRACE_WEB_*``)."""
    return under_settings(router, settings)


_Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]


def _admin(user: User) -> User:
    if not user.allows(Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "role admin required")
    return user


async def _admin_action(user: ActionUser) -> User:
    return _admin(user)


AdminAction = Annotated[User, Depends(_admin_action)]


async def _locations(conn: AsyncConnection[TupleRow]) -> dict[str, list[tuple[str, str]]]:
    cur = await conn.execute(
        "SELECT site_id, location_id, name FROM locations ORDER BY site_id, location_id"
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for site, loc, name in await cur.fetchall():
        out.setdefault(str(site), []).append((str(loc), str(name)))
    return out


def _mount_form(device: discovery.Unassigned, places: list[tuple[str, str]]) -> str:
    options = "".join(f'<option value="{e(loc)}">{e(name)} ({e(loc)})</option>'
                      for loc, name in places)  # fmt: skip
    return (
        f'<form class="mount" data-device="{e(device.device_id)}">'
        f'<select name="location_id" aria-label="location for {e(device.device_id)}">'
        f"{options}</select> <button>Mount</button> <span class='answer'></span></form>"
    )


def unassigned_section(
    devices: list[discovery.Unassigned], places: dict[str, list[tuple[str, str]]], *, admin: bool
) -> str:
    if not devices:
        return section(
            "unassigned", "Unassigned devices", "<p>Every reporting device is mounted.</p>"
        )
    rows = []
    for d in devices:
        candidates = places.get(d.site_id or "", []) or [p for ps in places.values() for p in ps]
        action = f"<td>{_mount_form(d, candidates)}</td>" if admin else ""
        kind = "sensor" if d.device_type == "sensor" else "RFID reader"
        rows.append(
            f"<tr><td>{e(d.device_id)}</td><td>{kind}</td><td>{e(d.gateway_id)}</td>"
            f"<td>{e(d.site_id)}</td><td>{when(d.last_seen_at)}</td><td>{e(d.read_at)}</td>"
            f"{action}</tr>"
        )
    head = "<th>Device</th><th>Kind</th><th>Gateway</th><th>Site</th><th>Last seen</th>"
    head += "<th>Read at</th>" + ("<th>Mount at</th>" if admin else "")
    intro = (
        "<p>These report to the cloud but are mounted nowhere: their readings are stored but "
        "judged against no storage profile until they are mounted.</p>"
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return section("unassigned", "Unassigned devices", intro + table)


async def _opcua_sources(conn: AsyncConnection[TupleRow]) -> list[tuple[str, str, str]]:
    cur = await conn.execute(
        "SELECT gateway_id, name, settings->>'endpoint' FROM gateway_sources"
        " WHERE kind = 'opcua' ORDER BY gateway_id, name"
    )
    return [(str(g), str(n), str(ep or "")) for g, n, ep in await cur.fetchall()]


def browse_section(sources: list[tuple[str, str, str]]) -> str:
    if not sources:
        inner = (
            "<p>No OPC-UA source is registered. Add one to a gateway "
            "(<code>PUT /v1/gateways/{id}/sources/{name}</code>, kind <code>opcua</code>) "
            "to browse its server here.</p>"
        )
        return section("browse", "Browse an OPC-UA server", inner)
    options = "".join(
        f'<option value="{e(g)}|{e(n)}">{e(g)} · {e(n)} ({e(ep)})</option>' for g, n, ep in sources
    )
    inner = (
        "<p>The gateway browses the server on its next poll (every 30 s by default) and the "
        "nodes appear below; type a sensor id beside a variable to read it.</p>"
        '<form id="browse-form"><select name="source" aria-label="OPC-UA source">'
        f"{options}</select> <label>Depth <input name='depth' type='number' min='1' max='10'"
        " value='3'></label> <button>Browse</button> <span class='answer'></span></form>"
        '<div id="browse-result"></div>'
    )
    return section("browse", "Browse an OPC-UA server", inner)


def nodes_fragment(found: browse.BrowseStatus) -> str:
    if found.answered_at is None:
        waiting = "taken by the gateway" if found.taken_at else "waiting for the gateway"
        return f'<p class="pending" data-pending="1">Request {found.request_id}: {waiting}…</p>'
    if found.error:
        return f"<p class='failed'>The gateway could not browse: {e(found.error)}</p>"
    rows = []
    for node in found.nodes or []:
        pick = ""
        if node.get("node_class") == "Variable":
            pick = (
                f'<form class="pick" data-gateway="{e(found.gateway_id)}" '
                f'data-source="{e(found.source_name)}" data-node="{e(node["node_id"])}">'
                "<input name='sensor_id' placeholder='sensor id, e.g. fridge-1.t' required>"
                " <button>Read as sensor</button> <span class='answer'></span></form>"
            )
        rows.append(
            f"<tr><td>{e(node.get('path'))}</td><td><code>{e(node.get('node_id'))}</code></td>"
            f"<td>{e(node.get('node_class'))}</td><td>{e(node.get('data_type'))}</td>"
            f"<td>{e(node.get('value'))}</td><td>{pick}</td></tr>"
        )
    cut = (
        "<p>Stopped at the node limit: browse from a deeper start node.</p>"
        if found.truncated
        else ""
    )
    head = "<th>Path</th><th>Node id</th><th>Class</th><th>Type</th><th>Value</th><th></th>"
    return f"{cut}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


@router.get("/discovery", response_class=HTMLResponse)
async def discovery_page(pool: Pool, user: MaybeUser) -> Response:
    if user is None:
        return RedirectResponse("/ui/login", status_code=status.HTTP_303_SEE_OTHER)
    admin = user.allows(Role.ADMIN)
    async with pool.connection() as conn:
        devices = await discovery.list_unassigned(conn)
        places = await _locations(conn) if admin else {}
        sources = await _opcua_sources(conn) if admin else []
    body = "<h1>Discovery</h1>" + unassigned_section(devices, places, admin=admin)
    if admin:
        body += browse_section(sources)
    script = '<script src="/ui/discovery.js" defer></script>'
    return HTMLResponse(frame("Discovery", body, user=user.name, head=script))


@router.get("/discovery.js")
async def discovery_script() -> Response:
    text = resources.files("cloud.web").joinpath("static", "discovery.js").read_text("utf-8")
    return Response(text, media_type="text/javascript")


class MountForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: _Id
    location_id: _Id


@router.post("/discovery/mount")
async def mount(body: MountForm, pool: Pool, user: AdminAction) -> dict[str, Any]:
    async with transaction(pool) as conn:
        done = await discovery.mount_device(
            conn, body.device_id, body.location_id, mounted_at=None, actor=user.name,
            reason="mounted from the discovery page",
        )  # fmt: skip
    return done.__dict__


class BrowseForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway_id: _Id
    source: _Id
    depth: int = Field(default=3, ge=1, le=10)


@router.post("/discovery/browse")
async def ask_browse(body: BrowseForm, pool: Pool, user: AdminAction) -> dict[str, int]:
    async with transaction(pool) as conn:
        made = await browse.ask(
            conn, body.gateway_id, body.source, start_node=browse.OBJECTS_FOLDER,
            depth=body.depth, actor=user.name,
        )  # fmt: skip
    return {"request_id": made}


@router.get("/discovery/browse/{gateway_id}/{request_id}", response_class=HTMLResponse)
async def browse_result(
    gateway_id: IdPath, request_id: int, pool: Pool, user: SessionUser
) -> HTMLResponse:
    _admin(user)
    async with transaction(pool) as conn:
        found = await browse.status(conn, gateway_id, request_id)
    return HTMLResponse(nodes_fragment(found))


class PickForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gateway_id: _Id
    source: _Id
    node_id: str = Field(min_length=1, max_length=1000)
    sensor_id: _Id


@router.post("/discovery/point")
async def pick(body: PickForm, pool: Pool, user: AdminAction) -> dict[str, str]:
    """Reads the picked node as ``sensor_id`` on that gateway (audited as the API does)."""
    async with transaction(pool) as conn:
        point = PointRow(body.sensor_id, body.source, body.node_id, {})
        before = await store.put_point(conn, body.gateway_id, point)
        await audit(
            conn, actor=user.name, action="gateway.point", subject=f"gateway:{body.gateway_id}",
            reason="picked from an OPC-UA browse",
            detail={"before": before.__dict__ if before else None, "after": point.__dict__},
        )  # fmt: skip
    return {"sensor_id": body.sensor_id, "address": body.node_id}
