"""Schemathesis against the alarms endpoints of a real ``coldtrace cloud serve``: no 5xx.

Runs as an admin (every role check passes) on the ledger tests' master data, so generated
channels, documents, windows, acknowledgements and closures reach validation and the handlers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import DatabaseFactory
from tests.support.fuzz import admin_cloud, fuzz_operations

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OURS = (
    r"^/v1/(sites/\{site_id\}/(alarm-|on-call)|alarms|suppressions|locations/\{location_id\}"
    r"/suppressions|excursions/\{excursion_id\}/closure)"
)


@pytest.fixture(scope="module")
def cloud(databases: DatabaseFactory) -> Iterator[tuple[str, str]]:
    with admin_cloud(databases) as running:
        yield running


def test_no_input_makes_the_alarm_endpoints_fail(cloud: tuple[str, str]) -> None:
    base, token = cloud
    calls = fuzz_operations(base, token, OURS, max_examples=15)
    assert len(calls) >= 25, sorted(calls)
    assert "PUT /v1/sites/{site_id}/alarm-policies/{name}" in calls
    assert "POST /v1/excursions/{excursion_id}/closure" in calls
    assert all(calls.values()), calls
