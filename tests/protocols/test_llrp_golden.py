"""Golden tests: message bodies recorded from an Impinj R420, decoded independently elsewhere.

Data: /work/shared/llrp-frames (from edgexfoundry/device-rfid-llrp-go testdata, Apache-2.0).
Each body is decoded, compared field by field with the JSON, and re-encoded byte for byte.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from protocols.llrp.frame import Frame
from protocols.llrp.messages import MessageType, decode_message
from protocols.llrp.params import Parameter
from protocols.llrp.reports import ReaderEvent, TagReport, status_of, tag_reports
from protocols.llrp.specs import KeepaliveSpec, ReportSpec

FRAMES = Path("/work/shared/llrp-frames")
TYPES = {
    "CloseConnectionResponse": MessageType.CLOSE_CONNECTION_RESPONSE,
    "GetAccessSpecsResponse": MessageType.GET_ACCESSSPECS_RESPONSE,
    "GetROSpecsResponse": MessageType.GET_ROSPECS_RESPONSE,
    "GetReaderCapabilitiesResponse": MessageType.GET_READER_CAPABILITIES_RESPONSE,
    "GetReaderConfigResponse": MessageType.GET_READER_CONFIG_RESPONSE,
    "ROAccessReport": MessageType.RO_ACCESS_REPORT,
    "ReaderEventNotification": MessageType.READER_EVENT_NOTIFICATION,
}
CASES = sorted(p.stem for p in FRAMES.glob("*.bytes")) if FRAMES.is_dir() else []
pytestmark = pytest.mark.skipif(not CASES, reason="shared LLRP golden frames not present")


def _load(stem: str) -> tuple[bytes, dict[str, Any], MessageType]:
    body = (FRAMES / f"{stem}.bytes").read_bytes()
    expected = json.loads((FRAMES / f"{stem}.json").read_text())
    return body, expected, TYPES[stem.split("-", maxsplit=1)[0]]


@pytest.mark.parametrize("stem", CASES)
def test_decode_then_encode_gives_the_same_bytes(stem: str) -> None:
    body, _, mtype = _load(stem)
    message = decode_message(Frame(1, mtype, 42, body))
    assert message.body() == body
    assert not any(p.opaque for p in message.params)
    assert message.encode()[10:] == body


@pytest.mark.parametrize("stem", [c for c in CASES if c.startswith("ROAccessReport")])
def test_tag_report_fields_match_the_independent_decode(stem: str) -> None:
    body, expected, mtype = _load(stem)
    reports = tag_reports(decode_message(Frame(1, mtype, 1, body)))
    assert len(reports) == len(expected["TagReportData"])
    for got, want in zip(reports, expected["TagReportData"], strict=True):
        assert got.epc == base64.b64decode(want["EPC96"]["EPC"]).hex().upper()
        assert got.epc_bits == 96
        assert want["EPCData"]["EPC"] is None
        pairs = {
            "antenna_id": "AntennaID",
            "peak_rssi": "PeakRSSI",
            "first_seen_utc": "FirstSeenUTC",
            "first_seen_uptime": "FirstSeenUptime",
            "last_seen_utc": "LastSeenUTC",
            "last_seen_uptime": "LastSeenUptime",
            "tag_seen_count": "TagSeenCount",
            "rospec_id": "ROSpecID",
            "spec_index": "SpecIndex",
            "inventory_parameter_spec_id": "InventoryParameterSpecID",
            "channel_index": "ChannelIndex",
            "access_spec_id": "AccessSpecID",
        }
        for ours, theirs in pairs.items():
            assert getattr(got, ours) == want[theirs], ours
        # Re-encoding the typed view gives the recorded bytes back.
        assert TagReport.to_parameter(got).encode() == body


def test_reader_event_notification_matches() -> None:
    body, expected, mtype = _load("ReaderEventNotification-000")
    event = ReaderEvent.from_message(decode_message(Frame(1, mtype, 1, body)))
    want = expected["ReaderEventNotificationData"]
    assert event.utc == want["UTCTimestamp"]
    assert want["Uptime"] == 0  # "absent" in the other decoder's zero-value convention
    assert event.uptime is None
    assert event.connection_close is (want["ConnectionCloseEvent"] is not None)
    assert event.connection_attempt is None
    assert event.extra == ()
    assert event.to_message(1).body() == body


@pytest.mark.parametrize(
    "stem",
    [
        "CloseConnectionResponse-000",
        "GetAccessSpecsResponse-000",
        "GetROSpecsResponse-000",
        "GetReaderConfigResponse-000",
        "GetReaderCapabilitiesResponse-000",
    ],
)
def test_llrp_status_matches(stem: str) -> None:
    body, expected, mtype = _load(stem)
    status = status_of(decode_message(Frame(1, mtype, 1, body)))
    assert status.code == expected["LLRPStatus"]["Status"]
    assert status.description == expected["LLRPStatus"]["ErrorDescription"]
    assert status.field_error is None
    assert status.parameter_error is None


def test_reader_config_matches() -> None:
    body, want, mtype = _load("GetReaderConfigResponse-000")
    message = decode_message(Frame(1, mtype, 1, body))
    ident = message.param(218)
    assert ident is not None
    assert ident.value[0] == want["Identification"]["IDType"]
    assert ident.value[3:] == base64.b64decode(want["Identification"]["ReaderID"])
    props = [p for p in message.params if p.type == 221]
    assert [
        {
            "AntennaConnected": bool(p.value[0] & 0x80),
            "AntennaID": struct.unpack_from(">H", p.value, 1)[0],
            "AntennaGain": struct.unpack_from(">h", p.value, 3)[0],
        }
        for p in props
    ] == want["AntennaProperties"]
    keepalive = message.param(220)
    assert keepalive is not None
    ka = KeepaliveSpec.from_parameter(keepalive)
    assert (ka.trigger, ka.interval_ms) == (
        want["KeepAliveSpec"]["Trigger"],
        want["KeepAliveSpec"]["Interval"],
    )
    report_param = message.param(237)
    assert report_param is not None
    report = ReportSpec.from_parameter(report_param)
    assert (report.trigger, report.n) == (
        want["ROReportSpec"]["Trigger"],
        want["ROReportSpec"]["N"],
    )
    selector = want["ROReportSpec"]["TagReportContentSelector"]
    assert report.selector.antenna_id is selector["EnableAntennaID"]
    assert report.selector.peak_rssi is selector["EnablePeakRSSI"]
    assert report.selector.first_seen is selector["EnableFirstSeenTimestamp"]
    assert report.selector.last_seen is selector["EnableLastSeenTimestamp"]
    assert report.selector.tag_seen_count is selector["EnableTagSeenCount"]
    assert report.selector.rospec_id is selector["EnableROSpecID"]
    state = message.param(217)
    assert state is not None
    assert struct.unpack(">I", state.value)[0] == want["LLRPConfigurationStateValue"]
    events = message.param(244)
    assert events is not None
    assert [
        {
            "ReaderEventType": struct.unpack_from(">H", e.value)[0],
            "NotificationEnabled": bool(e.value[2] & 0x80),
        }
        for e in events.children
    ] == want["ReaderEventNotificationSpec"]["EventNotificationStates"]


def _only(message_params: tuple[Parameter, ...], type_: int) -> Parameter:
    found = [p for p in message_params if p.type == type_]
    assert len(found) == 1
    return found[0]


def test_capabilities_match() -> None:
    body, want, mtype = _load("GetReaderCapabilitiesResponse-000")
    message = decode_message(Frame(1, mtype, 1, body))
    general = _only(message.params, 137)
    max_antennas, flags, maker, model, size = struct.unpack_from(">HHIIH", general.value)
    g = want["GeneralDeviceCapabilities"]
    assert max_antennas == g["MaxSupportedAntennas"]
    assert bool(flags & 0x8000) is g["CanSetAntennaProperties"]
    assert bool(flags & 0x4000) is g["HasUTCClock"]
    assert (maker, model) == (g["DeviceManufacturer"], g["Model"])
    assert general.value[14 : 14 + size].decode() == g["FirmwareVersion"]
    assert len(general.all(139)) == len(g["ReceiveSensitivities"])
    assert len(general.all(140)) == len(g["PerAntennaAirProtocols"])
    llrp = _only(message.params, 142)
    values = struct.unpack(">BBHIIIII", llrp.value)
    c = want["LLRPCapabilities"]
    assert values[1:] == (
        c["MaxPriorityLevelSupported"],
        c["ClientRequestedOpSpecTimeout"],
        c["MaxROSpecs"],
        c["MaxSpecsPerROSpec"],
        c["MaxInventoryParameterSpecsPerAISpec"],
        c["MaxAccessSpecs"],
        c["MaxOpSpecsPerAccessSpec"],
    )
    band = _only(_only(message.params, 143).children, 144)
    powers = [struct.unpack(">Hh", p.value) for p in band.all(145)]
    assert powers == [
        (e["Index"], e["TransmitPowerValue"])
        for e in want["RegulatoryCapabilities"]["UHFBandCapabilities"]["TransmitPowerLevels"]
    ]
    c1g2 = _only(message.params, 327)
    assert (
        struct.unpack_from(">H", c1g2.value, 1)[0]
        == want["C1G2LLRPCapabilities"]["MaxSelectFiltersPerQuery"]
    )
