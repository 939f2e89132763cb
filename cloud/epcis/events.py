"""Pure EPCIS 2.0 JSON-LD event building from ledger movements and sensor summaries.

Movements written together (same movement, time, place, reference and actor) become one event:
a pallet's receipt is one ObjectEvent with every unit, plus one AggregationEvent per container.

============  ==============  ===================  ======================================
movement      event           bizStep              disposition
============  ==============  ===================  ======================================
receive       ObjectEvent     receiving            in_progress
quarantine    ObjectEvent     holding              non_sellable_other
release       ObjectEvent     inspecting           active
reject        ObjectEvent     inspecting           damaged
recall_hold   ObjectEvent     holding              recalled
issue         ObjectEvent     shipping             in_transit
put_away      ObjectEvent     storing              —
move          ObjectEvent     storing              —
move to       ObjectEvent     shipping             in_transit   (a transfer loaded into its
transit                                                         transit location)
move out of   ObjectEvent     receiving            in_progress  (received at the other site,
transit                                                         with the transit's loggers)
scrap         ObjectEvent     destroying           destroyed
(readings)    ObjectEvent     sensor_reporting     — (sensorElementList)
============  ==============  ===================  ======================================

Identifiers: units stored under an EPC URI keep it; units known only by GS1 key, lots and
containers get GS1 Digital Link URIs (``https://id.gs1.org/01/<gtin>/10/<lot>``), which
EPCIS 2.0 accepts. Values are percent-encoded as the Digital Link standard requires (every
character outside RFC 3986's unreserved set), so lot ``A/B`` is ``10/A%2FB`` and serial ``A?B``
is ``21/A%3FB`` and each reads back exactly. A value outside GS1's character set 82 (a space,
``#``, non-ASCII), which no GS1 carrier can hold, is encoded the same way: the URI stays well
formed and decodes to the stored value, and a GS1 parser names the offending character.
Locations and sensors are ``urn:coldtrace:location:<id>`` / ``urn:coldtrace:sensor:<id>`` with
the id percent-encoded where a URN may not carry it (no SGLN mapping yet).

>>> from datetime import datetime, UTC
>>> t = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
>>> m = Move(1, "quarantine", t, "fridge-1", None, "quarantined", 5, "00614141123452", "L1",
...          None, "ex-1", "rules")
>>> e = events_from_moves([m])[0]
>>> e["type"], e["bizStep"], e["disposition"], e["quantityList"][0]["quantity"]
('ObjectEvent', 'holding', 'non_sellable_other', 5)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from protocols.gs1.digital_link import DEFAULT_BASE, format_digital_link
from protocols.gs1.errors import Gs1Error

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
_NAMESPACE = uuid.UUID("6f1c1a52-52f0-4d53-9b1e-8a7c3c0d9e11")

VOCABULARY: dict[str, tuple[str, str | None]] = {
    "receive": ("receiving", "in_progress"),
    "quarantine": ("holding", "non_sellable_other"),
    "release": ("inspecting", "active"),
    "reject": ("inspecting", "damaged"),
    "recall_hold": ("holding", "recalled"),
    "issue": ("shipping", "in_transit"),
    "put_away": ("storing", None),
    "move": ("storing", None),
    "scrap": ("destroying", "destroyed"),
}

_KEY = re.compile(r"^\((00)\)(\d{18})$|^\((01)\)(\d{14})\((21)\)(.+)$")


@dataclass(frozen=True)
class Move:
    """One ledger entry with its lot's identity and the unit's container, if any."""

    entry_id: int
    movement: str
    at: datetime
    location_id: str
    epc_uri: str | None
    status: str | None
    quantity: int
    gtin: str
    lot: str
    parent_uri: str | None
    reference: str | None
    actor: str
    from_location: str | None = None
    # a transfer's move into its transit location (shipping) or out of it (receiving)
    transit: str | None = None  # "out" | "in"


def identifier(uri_or_key: str) -> str:
    """An EPC URI as is; a GS1 element-string key as a GS1 Digital Link URI.

    >>> identifier("(01)00614141123452(21)7"), identifier("(00)106141412345678908")
    ('https://id.gs1.org/01/00614141123452/21/7', 'https://id.gs1.org/00/106141412345678908')
    """
    match = _KEY.match(uri_or_key)
    if match is None:
        return uri_or_key
    if match.group(1):
        return digital_link({"00": match.group(2)})
    return digital_link({"01": match.group(4), "21": match.group(6)})


def lot_class(gtin: str, lot: str) -> str:
    """The Digital Link of a lot (class-level identifier).

    >>> lot_class("00614141123452", "A/B")
    'https://id.gs1.org/01/00614141123452/10/A%2FB'
    """
    return digital_link({"01": gtin, "10": lot})


def digital_link(values: dict[str, str]) -> str:
    """A GS1 Digital Link URI of a key and its qualifiers, every value percent-encoded.

    >>> digital_link({"01": "00614141123452", "21": "A#1"})
    'https://id.gs1.org/01/00614141123452/21/A%231'
    """
    try:
        return format_digital_link(values)
    except Gs1Error:
        # Not a valid GS1 value: still a well-formed URI that decodes to the stored value.
        path = "".join(f"/{ai}/{quote(value, safe='')}" for ai, value in values.items())
        return DEFAULT_BASE + path


def private_urn(kind: str, name: str) -> str:
    """``urn:coldtrace:<kind>:<name>``, the name percent-encoded where a URN may not carry it.

    >>> private_urn("location", "fridge 1/a?#")
    'urn:coldtrace:location:fridge%201/a%3F%23'
    """
    return f"urn:coldtrace:{kind}:{quote(name, safe=_URN_SAFE)}"


_URN_SAFE = "/:@!$&'()*+,;="
"""RFC 8141 NSS characters beyond the unreserved ones: ``?`` and ``#`` would end it."""


def location_uri(location_id: str) -> str:
    return private_urn("location", location_id)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event_id(kind: str, first_entry: int) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}:{first_entry}')}"


def events_from_moves(
    moves: Iterable[Move], transit_sensors: dict[str, list[SensorSummary]] | None = None
) -> list[dict[str, Any]]:
    """ObjectEvents (and AggregationEvents for received containers), in order of time.

    A transfer's receipt out of transit carries ``transit_sensors`` of its transit location
    (one sensor element per logger over the trip) in its ``sensorElementList``.
    """
    groups: dict[tuple[Any, ...], list[Move]] = {}
    for m in moves:
        if m.movement not in VOCABULARY:
            continue
        key = (m.movement, m.at, m.location_id, m.reference, m.actor, m.transit)
        groups.setdefault(key, []).append(m)
    events: list[dict[str, Any]] = []
    for group in groups.values():
        event = _object_event(group)
        first = group[0]
        if first.transit is not None:
            _transit_event(event, first, (transit_sensors or {}).get(first.from_location or ""))
        events.append(event)
        if first.movement == "receive":
            events.extend(_aggregations(group))
    return sorted(events, key=lambda e: (e["eventTime"], e["eventID"]))


def _object_event(group: Sequence[Move]) -> dict[str, Any]:
    first = group[0]
    biz_step, disposition = VOCABULARY[first.movement]
    epcs = sorted({identifier(m.epc_uri) for m in group if m.epc_uri})
    quantities: dict[str, int] = {}
    for m in group:
        if m.epc_uri is None:
            cls = lot_class(m.gtin, m.lot)
            quantities[cls] = quantities.get(cls, 0) + m.quantity
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": _event_id("object", min(m.entry_id for m in group)),
        "eventTime": _time(first.at),
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "epcList": epcs,
        "bizStep": biz_step,
        "readPoint": {"id": location_uri(first.location_id)},
    }
    if quantities:
        event["quantityList"] = [
            {"epcClass": cls, "quantity": qty}  # no uom: a count of trade items
            for cls, qty in sorted(quantities.items())
        ]
    if disposition:
        event["disposition"] = disposition
    if first.movement not in {"issue", "scrap"}:  # the stock is still at a place of ours
        event["bizLocation"] = {"id": location_uri(first.location_id)}
    if first.reference and first.reference.startswith("asn:"):
        # the ASN a receipt answers to is the supplier's despatch advice (CBV type desadv)
        event["bizTransactionList"] = [{"type": "desadv", "bizTransaction": _ref(first.reference)}]
    return event


def _transit_event(event: dict[str, Any], m: Move, sensors: list[SensorSummary] | None) -> None:
    """A transfer's shipping (into transit) or receiving (out of it) event, in place."""
    transfer = private_urn("desadv", (m.reference or "").removeprefix("transfer:"))
    event["bizTransactionList"] = [{"type": "desadv", "bizTransaction": transfer}]
    if m.transit == "out":
        event |= {"bizStep": "shipping", "disposition": "in_transit"}
        event["readPoint"] = {"id": location_uri(m.from_location or m.location_id)}
        event.pop("bizLocation", None)
        event["sourceList"] = [
            {"type": "location", "source": location_uri(m.from_location or m.location_id)}
        ]
        return
    event |= {"bizStep": "receiving", "disposition": "in_progress"}
    event["destinationList"] = [{"type": "location", "destination": location_uri(m.location_id)}]
    if sensors:
        event["sensorElementList"] = [_sensor_element(s) for s in sensors]


def _sensor_element(s: SensorSummary) -> dict[str, Any]:
    return {
        "sensorMetadata": {
            "time": _time(s.end), "startTime": _time(s.start), "endTime": _time(s.end),
            "deviceID": private_urn("sensor", s.sensor_id),
        },
        "sensorReport": [
            {
                "type": "Temperature", "deviceID": private_urn("sensor", s.sensor_id),
                "minValue": s.minimum, "maxValue": s.maximum, "meanValue": round(s.mean, 3),
                "uom": "CEL",
            }
        ],
    }  # fmt: skip


def _ref(reference: str) -> str:
    return private_urn("desadv", reference.removeprefix("asn:"))


def _aggregations(group: Sequence[Move]) -> list[dict[str, Any]]:
    children: dict[str, list[str]] = {}
    for m in group:
        if m.epc_uri and m.parent_uri:
            children.setdefault(m.parent_uri, []).append(identifier(m.epc_uri))
    first = group[0]
    return [
        {
            "type": "AggregationEvent",
            "eventID": _event_id(f"aggregation:{parent}", min(m.entry_id for m in group)),
            "eventTime": _time(first.at),
            "eventTimeZoneOffset": "+00:00",
            "parentID": identifier(parent),
            "childEPCs": sorted(kids),
            "action": "OBSERVE",
            "bizStep": "receiving",
            "disposition": "in_progress",
            "readPoint": {"id": location_uri(first.location_id)},
            "bizLocation": {"id": location_uri(first.location_id)},
        }
        for parent, kids in sorted(children.items())
    ]


@dataclass(frozen=True)
class SensorSummary:
    """Readings of one sensor over one interval, summarised (°C)."""

    sensor_id: str
    location_id: str
    start: datetime
    end: datetime
    count: int
    minimum: float
    maximum: float
    mean: float
    lots: tuple[tuple[str, str], ...]  # (gtin, lot) held at the location


def sensor_event(s: SensorSummary) -> dict[str, Any]:
    """An ObjectEvent carrying a sensorElementList (EPCIS 2.0 §7.3.6) for one interval."""
    return {
        "type": "ObjectEvent",
        "eventID": _event_id(f"sensor:{s.sensor_id}", int(s.start.timestamp())),
        "eventTime": _time(s.end),
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "epcList": [],
        "quantityList": [{"epcClass": lot_class(g, lot)} for g, lot in s.lots],
        "bizStep": "sensor_reporting",
        "readPoint": {"id": location_uri(s.location_id)},
        "sensorElementList": [_sensor_element(s)],
    }


def document(events: list[dict[str, Any]], created: datetime) -> dict[str, Any]:
    """An EPCISDocument around the events."""
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(created),
        "epcisBody": {"eventList": events},
    }
