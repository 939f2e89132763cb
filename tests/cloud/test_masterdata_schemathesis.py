"""Schemathesis against the master-data endpoints of a real ``coldtrace cloud serve``: no 5xx.

Runs as an admin so generated requests reach validation and the handlers, on a database with
the ledger tests' master data for them to hit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import DatabaseFactory
from tests.support.fuzz import admin_cloud, fuzz_operations

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OURS = r"^/v1/(sites|locations|products|lots|sensors)(/\{[a-z_]+(:path)?\})?$"


@pytest.fixture(scope="module")
def cloud(databases: DatabaseFactory) -> Iterator[tuple[str, str]]:
    with admin_cloud(databases) as running:
        yield running


def test_no_input_makes_the_master_data_endpoints_fail(cloud: tuple[str, str]) -> None:
    base, token = cloud
    calls = fuzz_operations(base, token, OURS)
    assert set(calls) == {
        "PUT /v1/sites/{site_id}", "GET /v1/sites", "PUT /v1/locations/{location_id}",
        "GET /v1/locations", "PUT /v1/products/{gtin}", "GET /v1/products", "POST /v1/lots",
        "GET /v1/lots", "PUT /v1/sensors/{sensor_id}", "GET /v1/sensors",
    }  # fmt: skip
    assert all(calls.values()), calls
