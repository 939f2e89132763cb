"""The dashboard's gateway panel shows each gateway's last batch and its clock against the
cloud's, the same figures GET /v1/gateways gives (issue 16.2)."""

from __future__ import annotations

import re

import psycopg
import pytest

from cloud.web.gateways_panel import gateway_rows, gateways_section
from tests.support.web_dashboard import Seeded, seeded_site

pytestmark = pytest.mark.integration


async def _panel(url: str) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return gateways_section(await gateway_rows(conn))


async def test_last_batch_and_clock_skew(timescale_url: str) -> None:
    seeded: Seeded
    async with seeded_site(timescale_url, warm=False) as seeded:
        await seeded.site.rows(  # within network and batching delay
            "UPDATE gateway_streams SET last_sent_at = last_received_at + interval '20 s'"
            " RETURNING 1"
        )
        html = await _panel(timescale_url)
        assert "<th>Last batch</th><th>Clock</th>" in html
        [row] = re.findall(r"<tr class=[^>]*data-gateway=[^>]*>.*?</tr>", html)
        assert re.search(r"<td class='last-batch'><time datetime=", row), row
        assert "<td class='clock'>in step</td>" in row
        await seeded.site.rows(
            "UPDATE gateway_streams SET last_sent_at = last_received_at + interval '3 min 10 s'"
            " RETURNING 1"
        )
        assert "<b>3 min ahead</b>" in await _panel(timescale_url)
        await seeded.site.rows(
            "UPDATE gateway_streams SET last_sent_at = last_received_at - interval '2 hours'"
            " RETURNING 1"
        )
        assert "<b>2 h 00 min behind</b>" in await _panel(timescale_url)
        await seeded.site.rows(
            "INSERT INTO gateways (gateway_id, token_hash) VALUES ('quiet-gw', 'x'::bytea)"
            " RETURNING 1"
        )
        quiet = re.search(r'data-gateway="quiet-gw".*?</tr>', await _panel(timescale_url))
        assert quiet
        assert "<td class='last-batch'>—</td><td class='clock'>—</td>" in quiet[0]
