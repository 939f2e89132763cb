"""Shared fixtures: the private PostgreSQL (TimescaleDB) cluster and Mosquitto broker.

``COLDTRACE_TEST_DATABASE_URL`` / ``COLDTRACE_TEST_MQTT_URL`` point the suite at existing services
instead of the private ones started under the project's data folder. The suite's PostgreSQL is a
cluster of its own (``.data/postgres-test``) without fsync: nothing in it needs to survive the
machine losing power, and dropping each test's database is then cheap. Tests that stop or crash
PostgreSQL start clusters of their own, durable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldtrace import devservices
from tests.support.databases import DatabaseFactory


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("COLDTRACE_TEST_DATABASE_URL")
    if url:
        return url
    return devservices.PostgresService.for_tests().start()


@pytest.fixture(scope="session")
def demo_postgres_url() -> str:
    """The cluster ``coldtrace demo`` uses (durable, not the suite's own), for the demo's tests."""
    return devservices.PostgresService.default().start()


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    url = os.environ.get("COLDTRACE_TEST_MQTT_URL")
    if url:
        return url
    return devservices.MosquittoService.default().start()


@pytest.fixture(scope="session")
def databases(postgres_url: str) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(postgres_url)
    yield factory
    factory.drop_all()


@pytest.fixture(params=["timescaledb", "postgresql"])
def storage_mode(request: pytest.FixtureRequest) -> str:
    """Runs a test once per storage layout: with TimescaleDB and without it."""
    mode: str = request.param
    return mode


@pytest.fixture
def database_url(databases: DatabaseFactory, storage_mode: str) -> str:
    """A fresh, migrated database in each storage layout."""
    return databases.create(storage_mode)


@pytest.fixture
def timescale_url(databases: DatabaseFactory) -> str:
    """A fresh, migrated database with TimescaleDB, for tests that need only that layout."""
    return databases.create("timescaledb")


@pytest.fixture
def own_broker() -> Iterator[devservices.MosquittoService]:
    """A Mosquitto of the test's own, for tests that stop or kill the broker.

    It lives under /var/tmp, which the broker's unprivileged user can reach.
    """
    directory = Path(tempfile.mkdtemp(prefix="coldtrace-broker-", dir="/var/tmp"))
    directory.chmod(0o755)
    service = devservices.MosquittoService(directory, devservices.MosquittoService.default().user)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        shutil.rmtree(directory, ignore_errors=True)
