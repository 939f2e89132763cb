"""The curl examples of docs/masterdata.md work, as written, against a real ``cloud serve``."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.auth.service import add_user
from tests.support.cloud_processes import serve

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl"),
]

DOC = Path(__file__).parents[2] / "docs" / "masterdata.md"


def _examples() -> str:
    text = DOC.read_text("utf-8")
    endpoints = text[text.index("## Endpoints") :]
    found = re.search(r"```sh\n(.*?)```", endpoints, re.DOTALL)
    assert found is not None, "no sh block under ## Endpoints"
    return found.group(1)


async def test_every_curl_example_succeeds(timescale_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        token = await add_user(conn, "ana", Role.ADMIN)
        await conn.commit()
    script = _examples().replace("TOKEN=...", f"TOKEN={token}")
    with serve(timescale_url) as cloud:
        script = script.replace("localhost:8000", cloud.base_url)
        # every request must succeed (curl fails on 4xx/5xx and prints the body)
        prelude = 'set -e\ncurl() { command curl --fail-with-body -sS "$@"; echo; }\n'
        done = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", prelude + script], capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"timezone":"Europe/Berlin"' in done.stdout
    assert '"token":' in done.stdout
    assert '"valid_from":"2026-05-04T08:00:00Z"' in done.stdout
