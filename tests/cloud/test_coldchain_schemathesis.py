"""Schemathesis against the cold-chain endpoints of a real ``coldtrace cloud serve``: no 5xx.

Profiles, excursions, alerts and lot exposure, as an admin (every role's view), on a database
with master data and stock for the handlers to reach.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import DatabaseFactory
from tests.support.fuzz import admin_cloud, fuzz_operations

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OURS = r"^/v1/(profiles|excursions|alerts|lots/\{lot_id\}/exposure)"


@pytest.fixture(scope="module")
def cloud(databases: DatabaseFactory) -> Iterator[tuple[str, str]]:
    with admin_cloud(databases) as running:
        yield running


def test_no_input_makes_the_cold_chain_endpoints_fail(cloud: tuple[str, str]) -> None:
    base, token = cloud
    calls = fuzz_operations(base, token, OURS)
    assert set(calls) >= {
        "GET /v1/profiles", "PUT /v1/profiles/{profile_id}", "GET /v1/excursions",
        "GET /v1/alerts", "POST /v1/alerts/{alert_id}/acknowledge",
        "GET /v1/lots/{lot_id}/exposure",
    }  # fmt: skip
    assert all(calls.values()), calls
