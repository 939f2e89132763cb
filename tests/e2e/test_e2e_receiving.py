"""RFID receiving, with real edge and cloud processes: ASN → dock door → ledger at the dock.

The LLRP reader simulator (in this process, so the test decides which pallet passes when) stands
at dock door ``dock-1``: antenna 1 outside, antenna 2 inside. ``coldtrace edge run`` reads it
through sllurp, its portal turns the reads into ``PortalPassage`` records committed after their
tag reads, and uplinks them to ``coldtrace cloud serve``, whose processor matches each passage
against the open ASNs posted through the API and receives into the ledger at the dock.

* ASN-1 announces pallet 1 (its SSCC with six serialized cases): the pallet passes inbound, the
  six units and the pallet are received at the dock and the receipt shows no discrepancy;
* the same pallet passes again: a new passage, a new receipt that receives nothing
  (``already_received``), and the ledger is unchanged;
* ASN-2 announces six serialized cases (an item-level ASN, no pallet label); five arrive: the
  five are received and the missing one is reported short;
* ASN-3 announces pallet 2 (its SSCC with six serialized cases); the pallet arrives with five:
  the SSCC is read, so the six are received per the label, and the case whose own tag was not
  read is reported ``unconfirmed`` under the pallet, the receipt flagged for verification.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from coldtrace.devservices import free_port
from protocols.gs1.epc import encode_sgtin96
from simulators.llrp_reader import LlrpReaderSimulator, SimulatorConfig
from simulators.scene import PalletPass, dock_door, pallet, sscc18
from tests.e2e import processes
from tests.e2e.checks import wait_source_records

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SITE, DOOR, READER = "e2e-rfid-site", "dock-1", "reader-1"
GTIN = "00614141000012"
PALLET_1 = sscc18("0614141", 1)
CASES_1 = [str(1000 + i) for i in range(6)]
CASES_2 = [str(2000 + i) for i in range(6)]
PALLET_2 = sscc18("0614141", 2)
CASES_3 = [str(3000 + i) for i in range(6)]


async def load_master_data(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO sites (site_id, name) VALUES (%s, 'RFID site')", (SITE,))
        await conn.execute(
            "INSERT INTO locations (location_id, site_id, kind, name)"
            " VALUES (%s, %s, 'dock_door', 'Dock door 1')",
            (DOOR, SITE),
        )
        await conn.execute(
            "INSERT INTO products (gtin, name, profile_id) VALUES (%s, 'Vaccine',"
            " 'std-refrigerated')",
            (GTIN,),
        )
        await conn.commit()


def asns() -> list[dict[str, Any]]:
    def line(lot: str, serials: list[str]) -> dict[str, Any]:
        return {"gtin": GTIN, "lot": lot, "expiry": "2027-06-30", "serials": serials,
                "company_prefix_length": 7}  # fmt: skip

    expected_at = datetime.now(UTC).isoformat()
    return [
        {"site_id": SITE, "reference": "ASN-1", "supplier": "E2E Pharma",
         "expected_at": expected_at,
         "containers": [{"sscc": PALLET_1, "contents": [line("L1", CASES_1)]}]},
        {"site_id": SITE, "reference": "ASN-2", "supplier": "E2E Pharma",
         "expected_at": expected_at, "loose": [line("L2", CASES_2)]},
        {"site_id": SITE, "reference": "ASN-3", "supplier": "E2E Pharma",
         "expected_at": expected_at,
         "containers": [{"sscc": PALLET_2, "contents": [line("L3", CASES_3)]}]},
    ]  # fmt: skip


def edge_config(tmp: Path, cloud_port: int, health_port: int, token: str, llrp: int) -> Path:
    config = {
        "gateway_id": "gw-rfid",
        "cloud": {"cloud_url": f"http://127.0.0.1:{cloud_port}", "token": token, "linger": 0.1,
                  "allow_insecure_http": True,
                  "backoff_initial": 0.05, "backoff_max": 0.5},
        "outbox": {"path": str(tmp / "outbox.db")},
        "health": {"port": health_port},
        "supervision": {"shutdown_flush": 2, "stop_grace": 3},
        "llrp": [{"reader_id": READER, "host": "127.0.0.1", "port": llrp, "antennas": [1, 2],
                  "report_timeout": 0.1, "backoff_initial": 0.1, "backoff_max": 1}],
        "doors": [{"door_id": DOOR, "reader_id": READER, "outside_antennas": [1],
                   "inside_antennas": [2], "quiet_gap": 1, "debounce": 2, "max_dwell": 30}],
    }  # fmt: skip
    path = tmp / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def next_receipt(api: httpx.AsyncClient, count: int, within: float = 30.0) -> dict[str, Any]:
    """Waits for the ``count``-th receipt (one per passage) and returns it."""
    deadline = time.monotonic() + within
    while True:
        found = (await api.get("/v1/receipts")).json()
        if len(found) >= count:
            assert len(found) == count, found  # one receipt per passage, no more
            newest: dict[str, Any] = max(found, key=lambda r: r["receipt_id"])
            return newest
        assert time.monotonic() < deadline, f"receipt {count} not made in {within} s: {found}"
        await asyncio.sleep(0.2)


async def pass_pallet(sim: LlrpReaderSimulator, tags: tuple[str, ...]) -> None:
    sim.scene.add(PalletPass(tags, start=sim.now() + 0.2, direction="in"))


async def dock_stock(api: httpx.AsyncClient) -> dict[str, int]:
    balances = (await api.get("/v1/ledger/balances", params={"location_id": DOOR})).json()
    assert all(b["status"] == "available" for b in balances), balances
    return {b["lot_number"]: b["quantity"] for b in balances}


def no_discrepancy(summary: dict[str, Any]) -> bool:
    keys = ("over", "unexpected", "short", "undecodable", "unconfirmed", "needs_verification")
    return not any(summary.get(k) for k in keys)


async def test_asn_pallet_through_dock_door_received_once_and_missing_case_short(
    tmp_path: Path, timescale_url: str
) -> None:
    url, log = timescale_url, tmp_path / "processes.log"
    await load_master_data(url)
    token = await processes.gateway_token(url, "gw-rfid", SITE)
    operator = await processes.user_token(url, "e2e-op", "operator")
    cloud_port, health_port = free_port(), free_port()
    cloud = await processes.cloud_serve(url, cloud_port, log)
    edge: processes.Proc | None = None
    headers = {"Authorization": f"Bearer {operator}"}
    base = f"http://127.0.0.1:{cloud_port}"
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers) as api:
            for asn in asns():
                answer = await api.post("/v1/asns", json=asn)
                assert answer.status_code == 201, answer.text
            sim_config = SimulatorConfig(port=0, speed=4.0, antennas=2)
            async with LlrpReaderSimulator(dock_door(seed=7), sim_config) as sim:
                config = edge_config(tmp_path, cloud_port, health_port, token, sim.port)
                edge = await processes.edge_run(config, health_port, log)
                await wait_source_records(health_port, f"llrp:{READER}", 1)  # connected
                await check_pallet_received_once(api, sim)
                await check_missing_case_short(api, sim)
                await check_missing_case_unconfirmed(api, sim)
    finally:
        for proc in (edge, cloud):
            if proc is not None and proc.running:
                await proc.terminate()
    assert edge is not None
    assert edge.popen.returncode == 0


async def check_pallet_received_once(api: httpx.AsyncClient, sim: LlrpReaderSimulator) -> None:
    load = pallet(PALLET_1, GTIN, len(CASES_1), first_serial=int(CASES_1[0]))
    await pass_pallet(sim, load)
    first = await next_receipt(api, 1)
    assert (first["door_id"], first["direction"], first["outcome"]) == (DOOR, "in", "complete")
    assert first["needs_verification"] is False
    assert first["received"] == len(CASES_1)  # the six cases (units; the pallet is their holder)
    assert no_discrepancy(first["summary"]), first["summary"]
    assert await dock_stock(api) == {"L1": len(CASES_1)}
    asn_1 = (await api.get("/v1/asns", params={"status": "received"})).json()
    assert [a["reference"] for a in asn_1] == ["ASN-1"]

    await pass_pallet(sim, load)  # the same pallet through the door again
    again = await next_receipt(api, 2)
    assert again["passage_id"] != first["passage_id"]
    assert (again["outcome"], again["received"]) == ("nothing", 0)
    assert again["summary"]["received"] == []
    # the pallet and its cases are on hand: already received, not over against the open ASN-2
    assert sorted(again["summary"]["already_received"]) == sorted(
        [f"(00){PALLET_1}", *(f"(01){GTIN}(21){s}" for s in CASES_1)]
    )
    assert no_discrepancy(again["summary"]), again["summary"]
    assert again["asn_ids"] == []
    assert await dock_stock(api) == {"L1": len(CASES_1)}


async def check_missing_case_short(api: httpx.AsyncClient, sim: LlrpReaderSimulator) -> None:
    arrived = tuple(encode_sgtin96(GTIN, int(s), 7) for s in CASES_2[:-1])  # one case missing
    await pass_pallet(sim, arrived)
    third = await next_receipt(api, 3)
    assert (third["outcome"], third["received"]) == ("partial", len(CASES_2) - 1)
    summary = third["summary"]
    assert list(summary["short"].values()) == [[f"(01){GTIN}(21){CASES_2[-1]}"]]
    assert not any(summary.get(k) for k in ("over", "unexpected", "undecodable"))
    assert await dock_stock(api) == {"L1": len(CASES_1), "L2": len(CASES_2) - 1}


async def check_missing_case_unconfirmed(api: httpx.AsyncClient, sim: LlrpReaderSimulator) -> None:
    load = pallet(PALLET_2, GTIN, len(CASES_3), first_serial=int(CASES_3[0]))
    await pass_pallet(sim, load[:-1])  # the pallet's label and five of its six cases
    fourth = await next_receipt(api, 4)
    # the SSCC was read: all six received per the label, nothing short...
    assert (fourth["outcome"], fourth["received"]) == ("complete", len(CASES_3))
    summary = fourth["summary"]
    assert f"(00){PALLET_2}" in summary["received"]
    assert not any(summary.get(k) for k in ("short", "over", "unexpected", "undecodable"))
    # ...and the case whose own tag was never read is unconfirmed, the receipt to be verified
    assert summary["unconfirmed"] == {f"(00){PALLET_2}": [f"(01){GTIN}(21){CASES_3[-1]}"]}
    assert fourth["needs_verification"] is True
    assert await dock_stock(api) == {
        "L1": len(CASES_1), "L2": len(CASES_2) - 1, "L3": len(CASES_3),
    }  # fmt: skip
