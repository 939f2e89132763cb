"""A database the service cannot reach is a 503 with Retry-After on every route, never a 500:
the API's clients and the dashboard's users retry, and the service recovers by itself."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import pytest

from tests.support.cloud_ingest import app_client, viewer_headers

pytestmark = pytest.mark.integration


def _allow_connections(server_url: str, database_url: str, allowed: bool) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


async def test_an_unreachable_database_answers_503_then_the_service_recovers(
    timescale_url: str, postgres_url: str
) -> None:
    url = timescale_url
    viewer = await viewer_headers(url)
    async with app_client(url, pool_timeout=2) as client:
        assert (await client.get("/v1/profiles", headers=viewer)).status_code == 200
        token = viewer["Authorization"].removeprefix("Bearer ")
        assert (await client.post("/ui/login", data={"token": token})).status_code == 303
        _allow_connections(postgres_url, url, allowed=False)
        try:
            api = await client.get("/v1/profiles", headers=viewer)
            page = await client.get("/ui", headers={"Accept": "text/html"})
        finally:
            _allow_connections(postgres_url, url, allowed=True)
        assert api.status_code == 503, api.text
        assert api.headers["Retry-After"] == "5"
        assert "unreachable or too busy" in api.json()["detail"]
        assert page.status_code == 503
        assert "data-status='503'" in page.text
        assert "Try again in a minute" in page.text
        assert "psycopg" not in api.text + page.text  # no internals shown
        for _ in range(3):  # the pool replaces the killed connections by itself
            again = await client.get("/v1/profiles", headers=viewer)
            if again.status_code == 200:
                break
        assert again.status_code == 200, again.text
