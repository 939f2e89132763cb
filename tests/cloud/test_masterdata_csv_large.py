"""Large master-data CSV imports: their own body limit, read only for admins, rows in chunks.

Against the real application and database: a file above the ordinary 256 KiB body limit imports
through ``/v1/import/{kind}`` and the admin page; one above ``limits.import_bytes`` answers 413;
other roles are refused before a byte of the file is read; bad rows spread over several chunks
are each named by their line, as when every row had its own savepoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from cloud.admin.csv_io import CHUNK_ROWS
from cloud.auth.model import Role
from cloud.limits.config import RequestLimits
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import GTIN_A

pytestmark = pytest.mark.integration

WHY = {"X-Coldtrace-Reason": "catalogue"}
CSV = {"Content-Type": "text/csv"}
ACTION = {"X-Coldtrace-Action": "1"}
LIMITS = RequestLimits()


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[tuple[Api, str]]:
    async with api(timescale_url) as a:
        yield a, timescale_url


def _lots(count: int) -> str:
    return "gtin,lot_number,expiry\n" + "".join(
        f"{GTIN_A},LOT-{i:07d},2027-06-30\n" for i in range(count)
    )


async def _count_lots(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM lots WHERE lot_number LIKE 'LOT-%%'")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def _sign_in(client: httpx.AsyncClient, token: str) -> None:
    client.cookies.clear()
    login = await client.post("/ui/login", data={"token": token})
    assert login.status_code == 303, login.text


async def test_a_file_above_the_ordinary_limit_imports(client: tuple[Api, str]) -> None:
    a, url = client
    text = _lots(12_000)
    assert LIMITS.body_bytes < len(text.encode()) < LIMITS.import_bytes
    dry = await a.client.post(
        "/v1/import/lot", content=text.encode(), headers=a.as_(Role.ADMIN) | WHY | CSV
    )
    assert dry.status_code == 200, dry.text[:500]
    assert (dry.json()["created"], dry.json()["errors"]) == (12_000, 0)
    assert await _count_lots(url) == 0
    applied = await a.client.post(
        "/v1/import/lot", content=text.encode(), params={"apply": "true"},
        headers=a.as_(Role.ADMIN) | WHY | CSV,
    )  # fmt: skip
    assert applied.json()["applied"] is True
    assert await _count_lots(url) == 12_000
    # the page takes the same file wrapped in JSON
    await _sign_in(a.client, a.tokens[Role.ADMIN])
    page = await a.client.post(
        "/ui/admin/api/import/lot", headers=ACTION, json={"csv": text, "reason": "again"}
    )
    assert page.status_code == 200, page.text[:500]
    assert page.json()["unchanged"] == 12_000


async def test_a_file_above_the_import_limit_answers_413(client: tuple[Api, str]) -> None:
    a, url = client
    text = _lots(LIMITS.import_bytes // 30 + 1000)
    assert len(text.encode()) > LIMITS.import_bytes
    answer = await a.client.post(
        "/v1/import/lot", content=text.encode(), headers=a.as_(Role.ADMIN) | WHY | CSV
    )
    assert answer.status_code == 413
    assert f"limit of {LIMITS.import_bytes} bytes" in answer.json()["detail"]
    await _sign_in(a.client, a.tokens[Role.ADMIN])
    page = await a.client.post(
        "/ui/admin/api/import/lot", headers=ACTION, json={"csv": text, "reason": "too much"}
    )
    assert page.status_code == 413
    assert await _count_lots(url) == 0
    # every other route keeps the ordinary limit
    ordinary = await a.client.put(
        "/v1/sites/s-big", content=b" " * (LIMITS.body_bytes + 1),
        headers=a.as_(Role.ADMIN) | {"Content-Type": "application/json"},
    )  # fmt: skip
    assert ordinary.status_code == 413


class _Watched:
    """A request body that notes whether the application read any of it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.read = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        yield self.body


async def test_other_roles_are_refused_before_the_file_is_read(client: tuple[Api, str]) -> None:
    a, _ = client
    text = _lots(20_000).encode()
    for role in (Role.VIEWER, Role.OPERATOR, Role.QA):
        body = _Watched(text)
        answer = await a.client.post(
            "/v1/import/lot", content=body, headers=a.as_(role) | WHY | CSV
        )
        assert answer.status_code == 403, (role, answer.text)
        assert not body.read, role
        await _sign_in(a.client, a.tokens[role])
        body = _Watched(b'{"csv": "' + text.replace(b"\n", b"\\n") + b'", "reason": "x"}')
        page = await a.client.post(
            "/ui/admin/api/import/lot", content=body,
            headers=ACTION | {"Content-Type": "application/json"},
        )  # fmt: skip
        assert page.status_code == 403, (role, page.text)
        assert not body.read, role


async def test_bad_rows_in_several_chunks_are_named_by_line(client: tuple[Api, str]) -> None:
    a, url = client
    rows = _lots(3 * CHUNK_ROWS).splitlines()
    bad = {
        CHUNK_ROWS + 10: f"{GTIN_A},LOT-BAD-DATE,2027-13-45",  # refused by validation
        2 * CHUNK_ROWS + 7: rows[5],  # the same key as line 6
        2 * CHUNK_ROWS + 8: "00614141123453,LOT-NO-PRODUCT,",  # a GTIN with a bad check digit
        2 * CHUNK_ROWS + 9: "00012345678905,LOT-UNKNOWN,",  # no such product
    }
    for line, text in bad.items():
        rows[line - 1] = text
    body = ("\n".join(rows) + "\n").encode()
    headers = a.as_(Role.ADMIN) | WHY | CSV
    dry = (await a.client.post("/v1/import/lot", content=body, headers=headers)).json()
    refused = {r["line"]: r["error"] for r in dry["rows"] if r["error"] is not None}
    assert sorted(refused) == sorted(bad)
    assert "line 6" in refused[2 * CHUNK_ROWS + 7]
    assert "no product" in refused[2 * CHUNK_ROWS + 9]
    outcomes: list[Any] = [r["outcome"] for r in dry["rows"] if r["line"] not in bad]
    assert outcomes == ["created"] * (3 * CHUNK_ROWS - len(bad))
    assert [r["line"] for r in dry["rows"]] == list(range(2, 3 * CHUNK_ROWS + 2))
    applied = await a.client.post(
        "/v1/import/lot", content=body, params={"apply": "true"}, headers=headers
    )
    assert applied.json()["applied"] is False
    assert await _count_lots(url) == 0
