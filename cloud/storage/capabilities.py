"""What the database can do: TimescaleDB with the Timescale licence, the Apache build, or none.

The answer picks the storage mode: compression, continuous aggregates and retention policies need
the Timescale licence; with the Apache build or plain PostgreSQL the same work runs as scheduled
jobs. Hypertables exist in both TimescaleDB editions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from psycopg import AsyncConnection
from psycopg.rows import TupleRow


class StorageMode(StrEnum):
    TIMESCALEDB = "timescaledb"
    TIMESCALEDB_APACHE = "timescaledb-apache"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class Capabilities:
    extension_version: str | None
    license: str | None

    @property
    def mode(self) -> StorageMode:
        if self.extension_version is None:
            return StorageMode.POSTGRESQL
        if self.license == "timescale":
            return StorageMode.TIMESCALEDB
        return StorageMode.TIMESCALEDB_APACHE

    @property
    def hypertables(self) -> bool:
        return self.extension_version is not None

    @property
    def native_policies(self) -> bool:
        """Compression, continuous aggregates, retention policies and add_job are available."""
        return self.mode is StorageMode.TIMESCALEDB


async def probe(conn: AsyncConnection[TupleRow]) -> Capabilities:
    cur = await conn.execute(
        "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
        " nullif(current_setting('timescaledb.license', true), '')"
    )
    row = await cur.fetchone()
    assert row is not None
    version, license_ = row
    return Capabilities(
        extension_version=str(version) if version is not None else None,
        license=str(license_) if license_ is not None and version is not None else None,
    )
