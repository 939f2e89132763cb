"""Fixtures shared by the cloud tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cloud.storage.database import make_pool
from tests.support.coldchain_seed import Site, make_site


@pytest.fixture
async def site(timescale_url: str) -> AsyncIterator[Site]:
    """The cold-chain test site (fridges, a room, stock) on a fresh TimescaleDB database."""
    pool = make_pool(timescale_url, max_size=4)
    async with pool:
        yield await make_site(timescale_url, pool)
