"""Numbered SQL migrations, applied in order and recorded with a checksum, safe on a live system.

Files are ``migrations/NNNN_name.sql``. A recorded migration is never run again, so ``migrate`` is
idempotent; two processes migrating at once are serialised by an advisory lock.

Running against a database in use:

- **Lock waits are bounded.** Each statement waits at most ``lock_timeout`` for its locks: an
  ``ALTER TABLE`` queued behind a long transaction would otherwise block every query that comes
  after it. A transactional migration that times out is rolled back and retried a few times with
  backoff, then refused with the reason. No statement timeout applies (an index build may take
  long), whatever the role's defaults say.
- **Opting out of the transaction.** A file whose first line is ``-- coldtrace: no-transaction``
  runs statement by statement in autocommit (split by PostgreSQL's own parser, ``pglast``), as
  ``CREATE INDEX CONCURRENTLY`` requires. Its statements must be re-runnable (``IF NOT EXISTS``):
  if one fails, the ones before it stay applied and the file is not recorded. An index that a
  failed concurrent build left INVALID is dropped before the statement runs again.
- **Applied files are checksummed** (sha256 of the file). A recorded migration whose file has
  changed since is refused: schema changes go in a new file. Databases migrated before checksums
  existed get the checksum of the current file recorded on the first run of this runner.

Before the first migration, TimescaleDB is created in the database when the server offers it
(unless told not to), because the schema's layout depends on its presence. After the last one,
``roles.apply_grants`` gives the least-privilege roles their privileges on every table
(docs/security.md).

Exception tree::

    MigrationError              misnamed or duplicated file, changed file, failed migration
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

import pglast
from psycopg import AsyncConnection
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow

from cloud.storage.roles import apply_grants

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x636F6C64  # "cold": one advisory lock for schema changes
NO_TRANSACTION = "-- coldtrace: no-transaction"
"""First line of a migration file that must run outside a transaction."""


class MigrationError(RuntimeError):
    """A migration file is misnamed, duplicated, changed after it was applied, or failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text, hex.

        >>> Migration(1, "0001_a.sql", "SELECT 1;").checksum[:12]
        '17db4fd369ed'
        """
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        """False when the file's first line opts out of the transaction.

        >>> Migration(2, "0002_b.sql", "-- coldtrace: no-transaction\\nSELECT 1;").transactional
        False
        """
        first = self.sql.lstrip("\ufeff").split("\n", 1)[0].strip()
        return first != NO_TRANSACTION


@dataclass(frozen=True)
class LockPolicy:
    """How long a migration statement waits for a lock, and how often a migration is retried."""

    lock_timeout: timedelta = timedelta(seconds=5)
    attempts: int = 5
    backoff: timedelta = timedelta(seconds=1)


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


async def migrate(
    conn: AsyncConnection[TupleRow],
    *,
    timescaledb: bool | None = None,
    policy: LockPolicy = LockPolicy(),
    migrations: Sequence[Migration] | None = None,
) -> list[str]:
    """Applies what is missing; returns the names applied. ``timescaledb``: None = if offered.

    ``migrations`` replaces the packaged files (tests).
    """
    todo = available() if migrations is None else sorted(migrations, key=lambda m: m.version)
    await conn.set_autocommit(True)
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        # The role may carry defaults for application work; schema changes need their own.
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("SET idle_in_transaction_session_timeout = 0")
        await conn.execute(
            "SELECT set_config('lock_timeout', %s, false)",
            (f"{int(policy.lock_timeout.total_seconds() * 1000)}ms",),
        )
        recorded = await _recorded(conn)
        if not recorded and timescaledb is not False:
            await _create_timescaledb(conn, required=timescaledb is True)
        await _check_unchanged(conn, todo, recorded)
        applied: list[str] = []
        for migration in todo:
            if migration.version in recorded:
                continue
            await _apply_with_retries(conn, migration, policy)
            applied.append(migration.name)
        # every run, so tables of any migration (and drift since) get the roles' privileges
        await apply_grants(conn)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def _recorded(conn: AsyncConnection[TupleRow]) -> dict[int, str | None]:
    """Applied versions and their recorded checksums (None: applied before checksums)."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    await conn.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text")
    cur = await conn.execute("SELECT version, checksum FROM schema_migrations")
    return {int(row[0]): row[1] for row in await cur.fetchall()}


async def _check_unchanged(
    conn: AsyncConnection[TupleRow], todo: Sequence[Migration], recorded: dict[int, str | None]
) -> None:
    for migration in todo:
        if migration.version not in recorded:
            continue
        known = recorded[migration.version]
        if known is None:
            await conn.execute(
                "UPDATE schema_migrations SET checksum = %s WHERE version = %s",
                (migration.checksum, migration.version),
            )
        elif known != migration.checksum:
            raise MigrationError(
                f"{migration.name} was changed after it was applied (recorded sha256 {known},"
                f" file {migration.checksum}); put schema changes in a new migration"
            )
    unknown = sorted(set(recorded) - {m.version for m in todo})
    if unknown:
        log.warning("the database has migrations this code does not know: %s", unknown)


async def _apply_with_retries(
    conn: AsyncConnection[TupleRow], migration: Migration, policy: LockPolicy
) -> None:
    for attempt in range(1, policy.attempts + 1):
        try:
            if migration.transactional:
                await _apply_in_transaction(conn, migration)
            else:
                await _apply_statements(conn, migration)
        except pg_errors.LockNotAvailable as err:
            if attempt == policy.attempts:
                raise MigrationError(
                    f"{migration.name}: a lock was not granted within {policy.lock_timeout}"
                    f" ({policy.attempts} attempts); the tables are busy, retry later: {err}"
                ) from err
            delay = policy.backoff * (2 ** (attempt - 1))
            log.warning("%s: lock not granted, retrying in %s", migration.name, delay)
            await asyncio.sleep(delay.total_seconds())
        except MigrationError:
            raise
        except Exception as err:
            raise MigrationError(f"{migration.name} failed: {err}") from err
        else:
            return


async def _apply_in_transaction(conn: AsyncConnection[TupleRow], migration: Migration) -> None:
    async with conn.transaction():
        await conn.execute(migration.sql.encode())
        await _record(conn, migration)


async def _apply_statements(conn: AsyncConnection[TupleRow], migration: Migration) -> None:
    """Autocommit, one statement at a time (``CREATE INDEX CONCURRENTLY`` and the like)."""
    try:
        statements = pglast.split(migration.sql)
    except pglast.parser.ParseError as err:
        raise MigrationError(f"{migration.name} does not parse: {err}") from err
    for statement in statements:
        await _drop_invalid_index(conn, statement)
        await conn.execute(statement.encode())
    await _record(conn, migration)


async def _drop_invalid_index(conn: AsyncConnection[TupleRow], statement: str) -> None:
    """Drops the INVALID index a failed ``CREATE INDEX CONCURRENTLY`` of ``statement`` left."""
    for node in pglast.parse_sql(statement):
        index = node.stmt
        if not isinstance(index, pglast.ast.IndexStmt) or not index.idxname:
            continue
        cur = await conn.execute(
            "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_index i ON i.indexrelid = c.oid"
            " WHERE c.relname = %s AND n.nspname = ANY(current_schemas(false))"
            " AND NOT i.indisvalid",
            (index.idxname,),
        )
        for (qualified,) in await cur.fetchall():
            log.warning("dropping the invalid index %s a failed build left", qualified)
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified}".encode())


async def _record(conn: AsyncConnection[TupleRow], migration: Migration) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
        (migration.version, migration.name, migration.checksum),
    )


async def _create_timescaledb(conn: AsyncConnection[TupleRow], *, required: bool) -> None:
    cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if await cur.fetchone() is None:
        if required:
            raise MigrationError("TimescaleDB was asked for but the server does not offer it")
        return
    await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
