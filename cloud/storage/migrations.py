"""Numbered SQL migrations, applied in order, each in its own transaction, recorded in a table.

Files are ``migrations/NNNN_name.sql``. A migration that is recorded is never run again, so
``migrate`` is idempotent; two processes migrating at once are serialised by an advisory lock.
Before the first migration, TimescaleDB is created in the database when the server offers it
(unless told not to), because the schema's layout depends on its presence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x636F6C64  # "cold": one advisory lock for schema changes


class MigrationError(RuntimeError):
    """A migration file is misnamed, duplicated, or failed to apply."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found: dict[int, Migration] = {}
    folder = resources.files("cloud.storage") / "migrations"
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file name not of the form NNNN_name.sql: {entry.name}")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version:04d}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(conn: AsyncConnection[TupleRow], *, timescaledb: bool | None = None) -> list[str]:
    """Applies what is missing; returns the names applied. ``timescaledb``: None = if offered."""
    await conn.set_autocommit(True)
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {int(row[0]) for row in await cur.fetchall()}
        if not done and timescaledb is not False:
            await _create_timescaledb(conn, required=timescaledb is True)
        applied: list[str] = []
        for migration in available():
            if migration.version in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
            except Exception as err:
                raise MigrationError(f"{migration.name} failed: {err}") from err
            applied.append(migration.name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def _create_timescaledb(conn: AsyncConnection[TupleRow], *, required: bool) -> None:
    cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if await cur.fetchone() is None:
        if required:
            raise MigrationError("TimescaleDB was asked for but the server does not offer it")
        return
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
