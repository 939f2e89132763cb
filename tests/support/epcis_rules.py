"""Structure rules of an EPCIS 2.0 JSON-LD document, written as a JSON Schema for these tests.

GS1's own EPCIS 2.0 JSON schema is not shipped by any package we may install (PyPI has EPCIS 1.2
XSDs and JSON-LD contexts only) and files of other repositories may not be committed here, so
this states the rules of EPCIS 2.0 (§7 event types and fields, §9 JSON/JSON-LD binding) and
CBV 2.0 (bare-word bizStep and disposition values) that our export must keep.
"""

from __future__ import annotations

from typing import Any

URI = {"type": "string", "format": "uri", "pattern": r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$"}
TIME = {"type": "string", "format": "date-time", "pattern": r"(Z|[+-]\d{2}:\d{2})$"}
OFFSET = {"type": "string", "pattern": r"^[+-]((0\d|1[0-3]):[0-5]\d|14:00)$"}
CBV_BIZ_STEPS = [
    "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning",
    "creating_class_instance", "cycle_counting", "decommissioning", "departing", "destroying",
    "disassembling", "dispensing", "encoding", "entering_exiting", "holding", "inspecting",
    "installing", "killing", "loading", "other", "packing", "picking", "receiving", "removing",
    "repackaging", "repairing", "replacing", "reserving", "retail_selling", "sampling",
    "sensor_reporting", "shipping", "staging_outbound", "stock_taking", "stocking",
    "storing", "transporting", "unloading", "unpacking", "void_shipping",
]  # fmt: skip
CBV_DISPOSITIONS = [
    "active", "available", "completeness_inferred", "completeness_verified", "conformant",
    "container_closed", "container_open", "damaged", "destroyed", "dispensed", "disposed",
    "encoded", "expired", "in_progress", "in_transit", "inactive", "mismatch_instance",
    "mismatch_class", "mismatch_quantity", "needs_replacement", "no_pedigree_match",
    "non_conformant", "non_sellable_other", "partially_dispensed", "recalled", "reserved",
    "retail_sold", "returned", "sellable_accessible", "sellable_not_accessible", "stolen",
    "unavailable", "unknown",
]  # fmt: skip

QUANTITY = {
    "type": "object",
    "required": ["epcClass"],
    "properties": {
        "epcClass": URI,
        "quantity": {"type": "number", "exclusiveMinimum": 0},
        "uom": {"type": "string", "pattern": r"^[A-Z0-9]{2,3}$"},
    },
    "additionalProperties": False,
}
SENSOR_REPORT = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string"},
        "deviceID": URI,
        "time": TIME,
        "value": {"type": "number"},
        "minValue": {"type": "number"},
        "maxValue": {"type": "number"},
        "meanValue": {"type": "number"},
        "uom": {"type": "string", "pattern": r"^[A-Z0-9]{2,3}$"},
    },
}
SENSOR_ELEMENT = {
    "type": "object",
    "required": ["sensorReport"],
    "properties": {
        "sensorMetadata": {
            "type": "object",
            "properties": {"time": TIME, "startTime": TIME, "endTime": TIME, "deviceID": URI},
        },
        "sensorReport": {"type": "array", "minItems": 1, "items": SENSOR_REPORT},
    },
}
COMMON = {
    "eventID": URI,
    "eventTime": TIME,
    "eventTimeZoneOffset": OFFSET,
    "action": {"enum": ["ADD", "OBSERVE", "DELETE"]},
    "bizStep": {"anyOf": [{"enum": CBV_BIZ_STEPS}, URI]},
    "disposition": {"anyOf": [{"enum": CBV_DISPOSITIONS}, URI]},
    "readPoint": {"type": "object", "required": ["id"], "properties": {"id": URI}},
    "bizLocation": {"type": "object", "required": ["id"], "properties": {"id": URI}},
    "bizTransactionList": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["bizTransaction"],
            "properties": {"type": {"type": "string"}, "bizTransaction": URI},
        },
    },
    "sensorElementList": {"type": "array", "items": SENSOR_ELEMENT},
    # EPCIS 2.0 §7.3.5.4: source and destination, CBV 2.0 types
    "sourceList": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type", "source"],
            "properties": {
                "type": {"enum": ["owning_party", "possessing_party", "location"]},
                "source": URI,
            },
        },
    },
    "destinationList": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type", "destination"],
            "properties": {
                "type": {"enum": ["owning_party", "possessing_party", "location"]},
                "destination": URI,
            },
        },
    },
}
OBJECT_EVENT = {
    "type": "object",
    "required": ["type", "eventTime", "eventTimeZoneOffset", "action"],
    "properties": {
        "type": {"const": "ObjectEvent"},
        **COMMON,
        "epcList": {"type": "array", "items": URI},
        "quantityList": {"type": "array", "items": QUANTITY},
    },
}
AGGREGATION_EVENT = {
    "type": "object",
    "required": ["type", "eventTime", "eventTimeZoneOffset", "action", "parentID"],
    "properties": {
        "type": {"const": "AggregationEvent"},
        **COMMON,
        "parentID": URI,
        "childEPCs": {"type": "array", "items": URI},
        "childQuantityList": {"type": "array", "items": QUANTITY},
    },
}
EPCIS_DOCUMENT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["@context", "type", "schemaVersion", "creationDate", "epcisBody"],
    "properties": {
        "@context": {
            "type": "array",
            "contains": {"const": "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"},
        },
        "type": {"const": "EPCISDocument"},
        "schemaVersion": {"const": "2.0"},
        "creationDate": TIME,
        "epcisBody": {
            "type": "object",
            "required": ["eventList"],
            "properties": {
                "eventList": {
                    "type": "array",
                    "items": {
                        "oneOf": [OBJECT_EVENT, AGGREGATION_EVENT],
                    },
                }
            },
        },
    },
}
