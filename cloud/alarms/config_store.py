"""SQL of a site's alarm configuration: channels (with their secret URLs) and the contact, group,
rota and policy documents. Every change is written to the audit trail with its before/after
(channel URLs masked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from cloud.alarms import ConfigError, NotFoundError
from cloud.alarms.channels import inspect_url
from cloud.alarms.directory import Directory, check_references, referenced_by
from cloud.alarms.policy import Contact, Group, Policy
from cloud.alarms.rota import Rota

DocKind = Literal["contact", "group", "rota", "policy"]
DOC_MODELS: dict[str, type[BaseModel]] = {
    "contact": Contact,
    "group": Group,
    "rota": Rota,
    "policy": Policy,
}


@dataclass(frozen=True)
class ChannelRow:
    channel_id: int
    site_id: str
    name: str
    service: str
    masked_url: str
    enabled: bool
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None


_CHANNEL_COLUMNS = (
    "channel_id, site_id, name, service, url, disabled_at IS NULL, consecutive_failures,"
    " last_success_at, last_failure_at, last_error"
)


def _channel(row: tuple[Any, ...]) -> ChannelRow:
    return ChannelRow(
        channel_id=int(row[0]), site_id=row[1], name=row[2], service=row[3],
        masked_url=inspect_url(row[4]).masked if _usable(row[4]) else "(invalid)",
        enabled=bool(row[5]), consecutive_failures=int(row[6]), last_success_at=row[7],
        last_failure_at=row[8], last_error=row[9],
    )  # fmt: skip


def _usable(url: str) -> bool:
    try:
        inspect_url(url)
    except ConfigError:
        return False
    return True


async def _audit(
    conn: AsyncConnection[TupleRow], actor: str, action: str, subject: str, detail: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, detail) VALUES (%s, %s, %s, %s)",
        (actor, action, subject, Jsonb(detail)),
    )


async def require_site(conn: AsyncConnection[TupleRow], site_id: str) -> str:
    """The site's time zone; ``NotFoundError`` when there is no such site."""
    cur = await conn.execute("SELECT timezone FROM sites WHERE site_id = %s", (site_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no site {site_id!r}")
    return str(row[0])


async def list_channels(conn: AsyncConnection[TupleRow], site_id: str) -> list[ChannelRow]:
    cur = await conn.execute(
        f"SELECT {_CHANNEL_COLUMNS} FROM alarm_channels WHERE site_id = %s ORDER BY name",
        (site_id,),
    )
    return [_channel(row) for row in await cur.fetchall()]


async def get_channel(conn: AsyncConnection[TupleRow], site_id: str, name: str) -> ChannelRow:
    cur = await conn.execute(
        f"SELECT {_CHANNEL_COLUMNS} FROM alarm_channels WHERE site_id = %s AND name = %s",
        (site_id, name),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no channel {name!r} at site {site_id!r}")
    return _channel(row)


async def put_channel(
    conn: AsyncConnection[TupleRow],
    site_id: str,
    name: str,
    *,
    url: str | None,
    enabled: bool,
    actor: str,
) -> ChannelRow:
    """Creates or replaces a channel; ``url`` None keeps the stored URL (re-enabling, say)."""
    await require_site(conn, site_id)
    cur = await conn.execute(
        "SELECT url, disabled_at IS NULL FROM alarm_channels WHERE site_id = %s AND name = %s"
        " FOR UPDATE",
        (site_id, name),
    )
    before = await cur.fetchone()
    if url is None and before is None:
        raise ConfigError("a new channel needs a url")
    new_url = url if url is not None else str(before[0]) if before else ""
    info = inspect_url(new_url)
    await conn.execute(
        "INSERT INTO alarm_channels (site_id, name, url, service, created_by, disabled_at)"
        " VALUES (%s, %s, %s, %s, %s, CASE WHEN %s THEN NULL ELSE now() END)"
        " ON CONFLICT (site_id, name) DO UPDATE SET url = EXCLUDED.url,"
        " service = EXCLUDED.service, updated_at = now(),"
        " disabled_at = CASE WHEN %s THEN NULL ELSE coalesce(alarm_channels.disabled_at, now())"
        " END, consecutive_failures = CASE WHEN alarm_channels.url = EXCLUDED.url"
        " THEN alarm_channels.consecutive_failures ELSE 0 END",
        (site_id, name, new_url, info.service, actor, enabled, enabled),
    )
    await _audit(conn, actor, "alarm_channel_put", f"site:{site_id}/channel:{name}", {
        "before": None if before is None else {
            "url": inspect_url(before[0]).masked if _usable(before[0]) else "(invalid)",
            "enabled": bool(before[1])},
        "after": {"url": info.masked, "service": info.service, "enabled": enabled},
        "url_changed": before is None or before[0] != new_url,
    })  # fmt: skip
    return await get_channel(conn, site_id, name)


async def directory(conn: AsyncConnection[TupleRow], site_id: str) -> Directory:
    """The site's enabled channels and its documents, parsed."""
    cur = await conn.execute(
        "SELECT name FROM alarm_channels WHERE site_id = %s AND disabled_at IS NULL", (site_id,)
    )
    channels = {str(row[0]) for row in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT kind, name, spec FROM alarm_config WHERE site_id = %s ORDER BY kind, name",
        (site_id,),
    )
    docs: dict[str, dict[str, Any]] = {k: {} for k in DOC_MODELS}
    for kind, name, spec in await cur.fetchall():
        docs[kind][name] = DOC_MODELS[kind].model_validate(spec)
    return Directory(
        channels=channels,
        contacts=docs["contact"],
        groups=docs["group"],
        rotas=docs["rota"],
        policies=docs["policy"],
    )


async def list_docs(
    conn: AsyncConnection[TupleRow], site_id: str, kind: DocKind
) -> list[tuple[str, dict[str, Any], str, datetime]]:
    cur = await conn.execute(
        "SELECT name, spec, updated_by, updated_at FROM alarm_config"
        " WHERE site_id = %s AND kind = %s ORDER BY name",
        (site_id, kind),
    )
    return [(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()]


async def put_doc(
    conn: AsyncConnection[TupleRow],
    site_id: str,
    kind: DocKind,
    name: str,
    spec: BaseModel,
    *,
    actor: str,
) -> None:
    """Writes a document after checking that everything it names exists at the site."""
    await require_site(conn, site_id)
    # One writer per site at a time: two documents written together cannot both miss each other.
    await conn.execute("SELECT 1 FROM sites WHERE site_id = %s FOR UPDATE", (site_id,))
    check_references(await directory(conn, site_id), kind, name, spec)
    body = spec.model_dump(mode="json")
    cur = await conn.execute(
        "SELECT spec FROM alarm_config WHERE site_id = %s AND kind = %s AND name = %s",
        (site_id, kind, name),
    )
    before = await cur.fetchone()
    await conn.execute(
        "INSERT INTO alarm_config (site_id, kind, name, spec, updated_by) VALUES"
        " (%s, %s, %s, %s, %s) ON CONFLICT (site_id, kind, name) DO UPDATE SET"
        " spec = EXCLUDED.spec, updated_by = EXCLUDED.updated_by, updated_at = now()",
        (site_id, kind, name, Jsonb(body), actor),
    )
    await _audit(conn, actor, f"alarm_{kind}_put", f"site:{site_id}/{kind}:{name}",
                 {"before": None if before is None else before[0], "after": body})  # fmt: skip


async def delete_item(
    conn: AsyncConnection[TupleRow], site_id: str, kind: str, name: str, *, actor: str
) -> None:
    """Deletes a document (or disables a channel: its delivery log keeps pointing at it),
    refused while another document names it."""
    await require_site(conn, site_id)
    await conn.execute("SELECT 1 FROM sites WHERE site_id = %s FOR UPDATE", (site_id,))
    users = referenced_by(await directory(conn, site_id), kind, name)
    if users:
        raise ConfigError(f"{kind} {name!r} is still named by " + ", ".join(users))
    if kind == "channel":
        cur = await conn.execute(
            "UPDATE alarm_channels SET disabled_at = coalesce(disabled_at, now()),"
            " updated_at = now() WHERE site_id = %s AND name = %s",
            (site_id, name),
        )
    else:
        cur = await conn.execute(
            "DELETE FROM alarm_config WHERE site_id = %s AND kind = %s AND name = %s",
            (site_id, kind, name),
        )
    if cur.rowcount == 0:
        raise NotFoundError(f"no {kind} {name!r} at site {site_id!r}")
    await _audit(conn, actor, f"alarm_{kind}_delete", f"site:{site_id}/{kind}:{name}", {})
