"""Schemathesis driven by hypothesis directly (``schemathesis.pytest.from_fixture`` does not work
with pytest 9): every operation of a path subset, as one user, must never answer 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


def fuzz_operations(
    base_url: str, token: str, path_regex: str, max_examples: int = 30
) -> dict[str, list[int]]:
    """Status codes answered per operation (``"GET /v1/x"``); fails on the first 5xx."""
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json").include(
        path_regex=path_regex
    )
    calls: dict[str, list[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails the test
        name = f"{operation.method.upper()} {operation.path}"
        calls[name] = _fuzz(operation.as_strategy(), token, max_examples)
    return calls


def _fuzz(strategy: Any, token: str, max_examples: int) -> list[int]:
    codes: list[int] = []

    @given(case=strategy)
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
        )
        codes.append(response.status_code)
        assert response.status_code < 500, (case.path, case.body, response.text)

    check()
    return codes
