"""``coldtrace sim fleet`` with a small fleet against a real ``cloud serve``: gateways registered
through the admin API, every reading stored once, tokens reused by a second run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from cloud.auth.model import Role
from cloud.auth.service import add_user
from tests.support.cloud_ingest import count
from tests.support.cloud_processes import serve

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def _admin(url: str) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        token = await add_user(conn, "fleet-admin", Role.ADMIN)
        await conn.commit()
    return token


def _fleet(base: str, admin: str | None, tokens: Path, *extra: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "coldtrace", "sim", "fleet", "--cloud", base,
         "--tokens", str(tokens), "--gateways", "3", "--sensors", "4", "--doors", "1",
         "--speed", "1200", "--duration", "10", "--upload-every", "120", *extra,
         *(["--admin-token", admin] if admin else [])],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(summary, dict)
    return summary


async def test_a_small_fleet_is_registered_and_stored_once(
    timescale_url: str, tmp_path: Path
) -> None:
    admin = await _admin(timescale_url)
    tokens = tmp_path / "tokens.json"
    with serve(timescale_url, "--no-processor", "--no-scheduler") as cloud:
        first = _fleet(cloud.base_url, admin, tokens, "--failing", "1")
        # The second run needs no admin: every token is in the file.
        second = _fleet(cloud.base_url, None, tokens)
    per_run = 3 * 4 * 10  # 3 gateways, 4 sensors, a reading a minute for 10 minutes
    assert first["offered"] == first["acked"] == per_run
    assert second["offered"] == second["acked"] == per_run
    assert await count(timescale_url, "readings") == 2 * per_run
    assert await count(timescale_url, "gateways", "gateway_id LIKE 'fleet-gw-%'") == 3
    assert await count(timescale_url, "audit_log", "action = 'gateway.add'") == 3
    assert sorted(json.loads(tokens.read_text())) == [f"fleet-gw-0000{g}" for g in range(3)]
    assert tokens.stat().st_mode & 0o077 == 0
    # The failing fridge of the first gateway warmed past 8 °C; the others stayed cold.
    hot = "value > 8 AND sensor_id = 'fleet-gw-00000/t000'"
    assert await count(timescale_url, "readings", hot) > 0
    cold = "value > 9.5 AND sensor_id <> 'fleet-gw-00000/t000'"
    assert await count(timescale_url, "readings", cold) == 0


def test_without_an_admin_token_it_says_what_is_needed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coldtrace", "sim", "fleet", "--cloud", "http://127.0.0.1:9",
         "--tokens", str(tmp_path / "t.json"), "--gateways", "1"],
        capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if k != "COLDTRACE_ADMIN_TOKEN"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "--admin-token" in done.stderr
