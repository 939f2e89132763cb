"""Least-privilege database roles: what the service and the read-only role may do, per table.

Three roles (docs/security.md):

- the **owner** runs the migrations and owns every object; only an owner can ALTER a table,
  disable its triggers or drop it. It is whoever runs ``coldtrace db migrate``;
- ``<prefix>_service``, the role ``coldtrace cloud serve`` runs as: reads and writes the tables it
  works on, but only SELECT and INSERT on the append-only tables (the ledger, the audit log), no
  TRUNCATE, no DDL, no extensions (no CREATE on the database or the schema);
- ``<prefix>_readonly`` for Grafana and reporting: SELECT on every table and view, except the
  columns that hold credentials (token hashes, URLs that may embed passwords, sessions).

Roles are cluster-wide and grants are per database, so migration 0060 creates the two group
roles once per cluster and records their names in ``database_roles``; ``apply_grants`` runs at
the end of every ``migrate`` and grants table by table from the policy below, so a table added by
a later migration is covered without a migration of its own, and drift is repaired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import LiteralString

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

APPEND_ONLY = frozenset(
    {"ledger_entries", "audit_log", "e_signatures", "report_archive", "sensor_calibrations"}
)
"""The service may only SELECT and INSERT here (the ledger also refuses by trigger)."""

SERVICE_READ_ONLY = frozenset({"schema_migrations", "database_roles"})
"""Bookkeeping of the owner that the service may read but never change."""

SECRET_COLUMN = re.compile(
    r"(token|secret|password|passwd|private|credential|session|signature_key|(^|_)url$)"
)
"""Columns hidden from the read-only role: credentials, or URLs that may carry them
(``alarm_channels.url`` holds Apprise URLs with passwords). Name new secret columns so."""


@dataclass(frozen=True)
class RoleNames:
    service: str
    readonly: str


async def role_names(conn: AsyncConnection[TupleRow]) -> RoleNames | None:
    """The roles recorded by migration 0060, or None before it ran."""
    cur = await conn.execute("SELECT to_regclass('database_roles') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return None
    cur = await conn.execute("SELECT purpose, role_name FROM database_roles")
    names = {str(p): str(r) for p, r in await cur.fetchall()}
    return RoleNames(service=names["service"], readonly=names["readonly"])


async def apply_grants(conn: AsyncConnection[TupleRow]) -> RoleNames | None:
    """Grants every relation of the schema to the roles by the policy (idempotent, atomic)."""
    async with conn.transaction():
        names = await role_names(conn)
        if names is None:
            return None
        svc, ro = sql.Identifier(names.service), sql.Identifier(names.readonly)
        both = sql.SQL("{}, {}").format(svc, ro)
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(both))
        await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(both))
        cur = await conn.execute(
            "SELECT c.relname, c.relkind,"
            " array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid"
            "       AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)"
            " FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
            " AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname"
        )
        for name, kind, columns in await cur.fetchall():
            await _grant_relation(conn, str(name), str(kind), [str(c) for c in columns], names)
        await conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(svc)
        )
        # SECURITY DEFINER helpers (coldtrace_drop_chunks) are the service's only, never PUBLIC's
        cur = await conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef"
            " AND p.proname LIKE 'coldtrace\\_%'"
        )
        for (function,) in await cur.fetchall():
            # regprocedure's text is already a quoted signature; format() builds the statement
            built = await conn.execute(
                "SELECT format('REVOKE ALL ON FUNCTION %%s FROM PUBLIC, %%I;"
                " GRANT EXECUTE ON FUNCTION %%s TO %%I', %s::text, %s::text, %s::text, %s::text)",
                (function, names.readonly, function, names.service),
            )
            statement = await built.fetchone()
            assert statement is not None
            await conn.execute(str(statement[0]).encode())
    return names


async def _grant_relation(
    conn: AsyncConnection[TupleRow],
    name: str,
    kind: str,
    columns: list[str],
    names: RoleNames,
) -> None:
    table = sql.Identifier(name)
    svc, ro = sql.Identifier(names.service), sql.Identifier(names.readonly)
    await conn.execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC, {}, {}").format(table, svc, ro))
    service: LiteralString
    if kind in ("v", "m") or name in SERVICE_READ_ONLY:
        service = "SELECT"
    elif name in APPEND_ONLY:
        service = "SELECT, INSERT"
    else:
        service = "SELECT, INSERT, UPDATE, DELETE"
    await conn.execute(sql.SQL("GRANT " + service + " ON {} TO {}").format(table, svc))
    visible = [c for c in columns if not SECRET_COLUMN.search(c)]
    if len(visible) == len(columns):
        await conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, ro))
    elif visible:
        await conn.execute(
            sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, visible)), table, ro
            )
        )
