"""Throw-away databases on the test cluster, cloned from migrated templates.

Two templates are migrated once per test session: one with TimescaleDB, one without it. Each
test database is a ``CREATE DATABASE … TEMPLATE`` copy, which takes milliseconds.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg

from cloud.storage.migrations import migrate

TEMPLATES = {"timescaledb": True, "postgresql": False}


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@dataclass
class DatabaseFactory:
    server_url: str
    created: list[str] = field(default_factory=list)
    _templates: dict[str, str] = field(default_factory=dict)

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.server_url, autocommit=True)

    def template(self, mode: str) -> str:
        if mode not in self._templates:
            name = f"ct_tmpl_{mode}_{uuid.uuid4().hex[:8]}"
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            import asyncio

            async def run() -> None:
                async with await psycopg.AsyncConnection.connect(
                    with_dbname(self.server_url, name)
                ) as aconn:
                    await migrate(aconn, timescaledb=TEMPLATES[mode])

            asyncio.run(run())
            # A closed client's backend (or TimescaleDB's scheduler) may linger for a moment;
            # a template nobody can connect to can be cloned safely.
            with self._admin() as conn:
                conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
            self._templates[mode] = name
        return self._templates[mode]

    def create(self, mode: str = "timescaledb", *, migrated: bool = True) -> str:
        """A new database's URL: migrated in ``mode``, or empty when ``migrated`` is False."""
        name = f"ct_test_{uuid.uuid4().hex[:12]}"
        template = self.template(mode) if migrated else "template1"
        with self._admin() as conn:
            for attempt in range(50):
                try:
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                    break
                except psycopg.errors.ObjectInUse:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
        self.created.append(name)
        return with_dbname(self.server_url, name)

    def drop(self, url: str) -> None:
        """Drops one database made by :meth:`create` (the session's templates stay)."""
        name = urlsplit(url).path.lstrip("/")
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(name)

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in reversed(self.created):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
