"""EPCIS 2.0 export: pure event building, and the API's document checked against the rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jsonschema_rs
import psycopg
import pytest

from cloud.auth.model import Role
from cloud.epcis.events import Move, events_from_moves, identifier
from cloud.ledger.core import Draft, Movement, Place, Status
from cloud.ledger.service import dispose_lot, post, quarantine_at_location
from cloud.recall.service import recall_hold
from cloud.receiving.asn import AsnIn
from cloud.receiving.step import handle_passage
from cloud.receiving.store import create_asn
from protocols.gs1.epc import encode_sscc96
from protocols.records import Direction, PortalPassage
from tests.support.epcis_rules import EPCIS_DOCUMENT
from tests.support.ledger_api import Api, api
from tests.support.ledger_seed import DOCK, GTIN_A, GTIN_B

T0 = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)
PALLET = "106141412345678908"
CASE = "006141410000000012"
# jsonschema_rs checks "format" (uri, date-time) when told to; jsonschema without its format
# extras (rfc3987, rfc3339-validator) would silently pass any string.
VALIDATOR = jsonschema_rs.Draft202012Validator(EPCIS_DOCUMENT, validate_formats=True)


def test_one_event_per_written_group_and_aggregations_for_containers() -> None:
    moves = [
        Move(
            i,
            "receive",
            T0,
            DOCK,
            f"(01){GTIN_A}(21){i}",
            "available",
            1,
            GTIN_A,
            "L1",
            f"(00){CASE}",
            "asn:PO-1",
            "portal:dock-1",
        )
        for i in range(1, 4)
    ] + [
        Move(
            9,
            "receive",
            T0,
            DOCK,
            None,
            "available",
            12,
            GTIN_B,
            "B7",
            None,
            "asn:PO-1",
            "portal:dock-1",
        )
    ]
    events = events_from_moves(moves)
    assert [e["type"] for e in events].count("ObjectEvent") == 1
    obj = next(e for e in events if e["type"] == "ObjectEvent")
    assert obj["epcList"] == [f"https://id.gs1.org/01/{GTIN_A}/21/{i}" for i in (1, 2, 3)]
    assert obj["quantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/{GTIN_B}/10/B7", "quantity": 12}
    ]
    [agg] = [e for e in events if e["type"] == "AggregationEvent"]
    assert agg["parentID"] == identifier(f"(00){CASE}")
    assert len(agg["childEPCs"]) == 3
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-03-04T06:00:00Z",
        "epcisBody": {"eventList": events},
    }
    VALIDATOR.validate(document)
    assert events_from_moves(moves)[0]["eventID"] == events[0]["eventID"]  # stable ids


@pytest.mark.parametrize(
    ("movement", "biz_step", "disposition", "biz_location"),
    [
        ("put_away", "storing", None, True),
        ("scrap", "destroying", "destroyed", False),
        ("issue", "shipping", "in_transit", False),
        ("adjust", None, None, None),  # count corrections are not business events
    ],
)
def test_vocabulary_of_the_other_movements(
    movement: str, biz_step: str | None, disposition: str | None, biz_location: bool | None
) -> None:
    move = Move(1, movement, T0, "f1", None, None, 2, GTIN_A, "L1", None, None, "op")
    events = events_from_moves([move])
    if biz_step is None:
        assert events == []
        return
    [event] = events
    assert (event["bizStep"], event.get("disposition")) == (biz_step, disposition)
    assert ("bizLocation" in event) is biz_location


def test_the_rules_catch_a_broken_event() -> None:
    bad = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-03-04T06:00:00Z",
        "epcisBody": {
            "eventList": [
                {"type": "ObjectEvent", "eventTime": "2026-03-04T06:00:00Z",
                 "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": "teleporting"}
            ]
        },
    }  # fmt: skip
    assert not VALIDATOR.is_valid(bad)


@pytest.fixture
async def client(timescale_url: str) -> AsyncIterator[Api]:
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await _story(conn)
            await conn.commit()
        yield a


async def _story(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    doc: dict[str, Any] = {
        "site_id": "site-1",
        "reference": "PO-1",
        "containers": [
            {"sscc": PALLET},
            {
                "sscc": CASE,
                "parent_sscc": PALLET,
                "contents": [
                    {
                        "gtin": GTIN_A,
                        "lot": "L1",
                        "serials": ["1", "2"],
                        "company_prefix_length": 7,
                    },
                    {"gtin": GTIN_B, "lot": "B7", "quantity": 12},
                ],
            },
        ],
    }
    await create_asn(conn, AsnIn.model_validate(doc))
    passage = PortalPassage(
        passage_id="p1", door_id=DOCK, reader_id="r1", direction=Direction.INBOUND,
        started_at=T0, ended_at=T0, epcs=(encode_sscc96(PALLET, 7),),
    )  # fmt: skip
    await handle_passage(conn, "gw-1", UUID(int=1), 1, passage)
    t1, t2 = T0 + timedelta(hours=2), T0 + timedelta(hours=5)
    await quarantine_at_location(
        conn, location_id=DOCK, effective_at=t1, actor="rules", reason="9 °C", reference="ex-1"
    )
    cur = await conn.execute("SELECT lot_id FROM lots WHERE lot_number = 'L1'")
    row = await cur.fetchone()
    assert row is not None
    lot_l1 = int(str(row[0]))
    await dispose_lot(
        conn, lot_id=lot_l1, decision="release", actor="qa-1", reason="within budget",
        effective_at=t2, signature_meaning="approved for use",
    )  # fmt: skip
    t3 = T0 + timedelta(hours=6)
    await post(
        conn,
        [
            Draft(
                Movement.ISSUE, lot_l1, 1, t3, "op", frm=Place(DOCK, Status.RELEASED),
                epc_uri="urn:epc:id:sgtin:0614141.012345.1", counterparty="Ward 4",
            )
        ],
    )  # fmt: skip
    await recall_hold(
        conn, lot_l1, actor="qa-1", reason="supplier recall", reference="RC-1",
        effective_at=t3 + timedelta(hours=1),
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO sensors (sensor_id, location_id) VALUES ('t-dock', %s)", (DOCK,)
    )
    for n, value in enumerate((4.0, 6.5, 9.1)):
        at = T0 + timedelta(minutes=20 * n + 5)
        await conn.execute(
            "INSERT INTO readings (time, sensor_id, value, quality, received_at, gateway_id,"
            " boot_id, seq) VALUES (%s, 't-dock', %s, 'good', %s, 'gw-1', %s, %s)",
            (at, value, at, UUID(int=1), 10 + n),
        )


@pytest.mark.integration
async def test_the_api_exports_a_valid_document_of_the_whole_story(client: Api) -> None:
    response = await client.client.get(
        "/v1/epcis/events",
        params={"from": "2026-03-04T00:00:00Z", "to": "2026-03-05T00:00:00Z", "sensors": True},
        headers=client.as_(Role.VIEWER),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    document = response.json()
    VALIDATOR.validate(document)
    steps = [
        (e["type"], e["bizStep"], e.get("disposition")) for e in document["epcisBody"]["eventList"]
    ]
    assert ("ObjectEvent", "receiving", "in_progress") in steps
    assert ("AggregationEvent", "receiving", "in_progress") in steps
    assert ("ObjectEvent", "holding", "non_sellable_other") in steps
    assert ("ObjectEvent", "inspecting", "active") in steps
    assert ("ObjectEvent", "shipping", "in_transit") in steps
    assert ("ObjectEvent", "holding", "recalled") in steps
    received = next(
        e
        for e in document["epcisBody"]["eventList"]
        if e["bizStep"] == "receiving" and e["type"] == "ObjectEvent"
    )
    assert received["bizTransactionList"] == [
        {"type": "desadv", "bizTransaction": "urn:coldtrace:desadv:PO-1"}
    ]
    assert received["epcList"] == [
        "urn:epc:id:sgtin:0614141.012345.1",
        "urn:epc:id:sgtin:0614141.012345.2",
    ]
    [sensor] = [e for e in document["epcisBody"]["eventList"] if "sensorElementList" in e]
    report = sensor["sensorElementList"][0]["sensorReport"][0]
    assert (report["type"], report["minValue"], report["maxValue"], report["uom"]) == (
        "Temperature", 4.0, 9.1, "CEL",
    )  # fmt: skip
    assert {q["epcClass"] for q in sensor["quantityList"]} == {
        f"https://id.gs1.org/01/{GTIN_A}/10/L1",
        f"https://id.gs1.org/01/{GTIN_B}/10/B7",
    }
    only_b = await client.client.get(
        "/v1/epcis/events",
        params={"from": "2026-03-04T00:00:00Z", "to": "2026-03-05T00:00:00Z", "gtin": GTIN_B},
        headers=client.as_(Role.VIEWER),
    )
    assert {e["bizStep"] for e in only_b.json()["epcisBody"]["eventList"]} == {
        "receiving", "holding",
    }  # fmt: skip
    bad = await client.client.get(
        "/v1/epcis/events",
        params={"from": "2026-03-05T00:00:00Z", "to": "2026-03-04T00:00:00Z"},
        headers=client.as_(Role.VIEWER),
    )
    assert bad.status_code == 422
