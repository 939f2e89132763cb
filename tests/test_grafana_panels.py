"""Every Grafana panel's SQL runs against a migrated, seeded database.

The Grafana macros the dashboards use are expanded the way Grafana's PostgreSQL datasource
expands them (``$__timeFilter(col)``, ``$__timeFrom()``, ``$__timeTo()``, ``$__interval``,
template variables as quoted, comma-separated lists), template variables are resolved by
running their own queries in order, then each panel's query runs in both storage layouts —
except panels using TimescaleDB functions (``time_bucket``), which run only with TimescaleDB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.support.web_dashboard import seeded_site

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent / "dashboards" / "grafana"
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
KNOWN_MACROS = {"$__timeFilter", "$__timeFrom", "$__timeTo", "$__interval"}
TIMESCALE_ONLY = re.compile(r"\btime_bucket\s*\(")

# Panels that must find rows in the seeded site (an excursion, quarantined lots, readings,
# alerts and one receipt): a query that silently matches nothing is a broken panel.
MUST_HAVE_ROWS = {
    "Open excursions", "Lots awaiting disposition", "Excursions", "Lots in quarantine",
    "Alarms", "Temperature", "Last reading", "Excursions opened per interval",
    "Temperature of units with an open excursion", "Passages", "Receiving accuracy", "ASNs",
    # the profile limits drawn beside the temperatures
    "Temperature (B)", "Temperature of units with an open excursion (B)",
}  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def quote(values: list[str]) -> str:
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def expand(sql: str, variables: dict[str, list[str]], start: datetime, end: datetime) -> str:
    """Grafana's macro and variable expansion for the PostgreSQL datasource."""
    used = set(re.findall(r"\$__[A-Za-z]+", sql))
    assert used <= KNOWN_MACROS, f"unsupported macros {used - KNOWN_MACROS}"
    frm, to = f"'{start.isoformat()}'", f"'{end.isoformat()}'"
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN {frm} AND {to}", sql)
    sql = sql.replace("$__timeFrom()", frm).replace("$__timeTo()", to)
    sql = sql.replace("$__interval", "5m")
    for name, values in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        text = quote(values) if values else "NULL"
        sql = sql.replace("${" + name + "}", text).replace("$" + name, text)
    assert "$" not in sql, f"unexpanded variable in {sql}"
    return sql


def test_provisioning_names_the_datasource_every_panel_uses() -> None:
    source = yaml.safe_load((ROOT / "provisioning/datasources/coldtrace.yml").read_text())
    [ds] = source["datasources"]
    provider = yaml.safe_load((ROOT / "provisioning/dashboards/coldtrace.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    boards = {"excursions", "sensor-history", "receiving", "transfers", "inventory"}
    assert {p.stem for p in DASHBOARDS} == boards
    uids = set()
    for path in DASHBOARDS:
        board = load(path)
        uids.add(board["uid"])
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), path
        for panel in panels(board):
            assert panel["datasource"]["uid"] == ds["uid"], (path, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == ds["uid"]
                assert target["rawQuery"] is True
        for variable in board["templating"]["list"]:
            assert variable["datasource"]["uid"] == ds["uid"]
    assert len(uids) == len(DASHBOARDS)


async def _rows(conn: psycopg.AsyncConnection[Any], sql: str) -> list[tuple[Any, ...]]:
    async with conn.transaction():
        cur = await conn.execute(sql.encode())  # composed by expand() from our own files
        return list(await cur.fetchall())


async def _seed_receiving(url: str) -> None:
    """One ASN and one inbound passage matched to it (rows as the receiving step writes them)."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "INSERT INTO asns (site_id, reference, supplier, expected_at, document)"
            " VALUES ('cc-site', 'ASN-1', 'Supplier', now(), '{}') RETURNING asn_id"
        )
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(
            "INSERT INTO receipts (gateway_id, boot_id, seq, passage_id, door_id, site_id,"
            " location_id, direction, at, asn_ids, received, outcome, summary) VALUES"
            " ('gw', gen_random_uuid(), 1, 'p1', 'door-1', 'cc-site', 'cc-dock', 'in',"
            " now() - interval '1 hour', %s, 10, 'partial',"
            """ '{"short": {"1": ["(01)x(21)1"]}, "over": [], "unexpected": ["e1"]}')""",
            ([row[0]],),
        )
        await conn.commit()


async def test_every_panel_query_runs(database_url: str, storage_mode: str) -> None:
    ran: dict[str, int] = {}
    async with seeded_site(database_url):
        await _seed_receiving(database_url)
        end = datetime.now(UTC)  # Grafana's "now-24h to now", after the data was stored
        start = end - timedelta(hours=24)
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            # as Grafana's datasource connects: the read-only role (docs/security.md)
            await conn.execute("SET ROLE coldtrace_readonly")
            for path in DASHBOARDS:
                board = load(path)
                variables: dict[str, list[str]] = {}
                for variable in board["templating"]["list"]:
                    sql = expand(variable["query"], variables, start, end)
                    values = [str(r[0]) for r in await _rows(conn, sql)]
                    assert values, f"{path.name}: variable {variable['name']} has no values"
                    variables[variable["name"]] = values
                for panel in panels(board):
                    for target in panel["targets"]:
                        raw = target["rawSql"]
                        if storage_mode == "postgresql" and TIMESCALE_ONLY.search(raw):
                            continue
                        rows = await _rows(conn, expand(raw, variables, start, end))
                        key = panel["title"]
                        if target["refId"] != "A":
                            key += f" ({target['refId']})"
                        ran[key] = len(rows)
                        if target["format"] == "time_series" and rows:
                            assert isinstance(rows[0][0], datetime), panel["title"]
    expected = MUST_HAVE_ROWS
    if storage_mode == "postgresql":
        expected = {t for t in expected if t in ran}
        assert "Temperature" not in ran  # time_bucket: TimescaleDB only
    empty = sorted(t for t in expected if not ran.get(t))
    assert not empty, f"panels without rows: {empty}"
    assert len(ran) >= (20 if storage_mode == "timescaledb" else 14)
