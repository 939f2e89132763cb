"""The simulated reader's per-connection state machine: requests in, responses out.

Pure (no I/O): :func:`handle_request` applies one client message to a :class:`RoSpecTable` and
returns the reply (``None`` for messages that get none) and whether to close the connection.

>>> from simulators.scene import dock_door
>>> table = RoSpecTable(dock_door(), DeviceProfile())
>>> reply, close = handle_request(table, Message(MessageType.DELETE_ROSPEC, 7, bytes(4)))
>>> (reply.name, reply.id, close) if reply else None
('DELETE_ROSPEC_RESPONSE', 7, False)
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from protocols.llrp.errors import DecodeError
from protocols.llrp.messages import Message, MessageType
from protocols.llrp.params import Parameter
from protocols.llrp.reports import LlrpStatus, StatusCode, TagReport, response
from protocols.llrp.specs import (
    KEEPALIVE_SPEC,
    REPORT_NONE,
    RO_REPORT_SPEC,
    ROSPEC,
    START_IMMEDIATE,
    KeepaliveSpec,
    ReportSpec,
    RoSpec,
)
from simulators.llrp_device import (
    DeviceProfile,
    ReaderConfig,
    capabilities_response,
    config_response,
)
from simulators.llrp_inventory import InventoryRun
from simulators.scene import Scene

_T = MessageType
LLRP_1_0_1 = 1  # the protocol version this reader speaks (LLRP 1.1 is version 2)
_EVENTS_AND_REPORTS = 226
_EVENT_NOTIFICATION_SPEC = 244
_ACCESS_REPORT_SPEC = 239


class SpecState(Enum):
    DISABLED = 0
    INACTIVE = 1
    ACTIVE = 2


@dataclass(slots=True)
class _Held:
    spec: RoSpec
    param: Parameter
    state: SpecState = SpecState.DISABLED
    run: InventoryRun | None = None


class RoSpecTable:
    """ROSpecs and reader configuration of one connection."""

    def __init__(self, scene: Scene, profile: DeviceProfile) -> None:
        self.scene = scene
        self.profile = profile
        self.specs: dict[int, _Held] = {}
        self.config = ReaderConfig()
        self.events_enabled = False
        self.pending_report = False
        self.final_reports: list[TagReport] = []

    @property
    def keepalive(self) -> KeepaliveSpec:
        return self.config.keepalive

    def keepalive_interval(self) -> float | None:
        """Seconds between KEEPALIVEs, or None when the client asked for none."""
        ka = self.keepalive
        if ka.trigger != 1 or ka.interval_ms <= 0:
            return None
        return ka.interval_ms / 1000

    def active_run(self, epoch_us: int, boot_us: int | None = None) -> InventoryRun | None:
        for held in self.specs.values():
            if held.state is SpecState.ACTIVE:
                if held.run is None:
                    held.run = InventoryRun(held.spec, self.scene, epoch_us, boot_us)
                return held.run
        return None

    def is_running(self, run: InventoryRun) -> bool:
        held = self.specs.get(run.spec.rospec_id)
        return held is not None and held.state is SpecState.ACTIVE and held.run is run

    def finished(self, run: InventoryRun) -> None:
        held = self.specs.get(run.spec.rospec_id)
        if held is not None and held.run is run:
            held.state, held.run = SpecState.INACTIVE, None

    def stop(self, held: _Held, state: SpecState) -> None:
        """Ends an ROSpec; what it saw since its last report is reported, as its report
        trigger asks (upon N tags or the end of the AISpec / ROSpec)."""
        report = held.spec.report
        if held.run is not None and report is not None and report.trigger != REPORT_NONE:
            self.final_reports += held.run.flush()
        held.state, held.run = state, None

    def take_final_reports(self) -> list[TagReport]:
        """The reports of ROSpecs that ended on a command, to send before its response."""
        reports, self.final_reports = self.final_reports, []
        return reports


def _error(code: int, text: str, field: tuple[int, int] | None = None) -> LlrpStatus:
    return LlrpStatus(code, text, field)


def _ok() -> LlrpStatus:
    return LlrpStatus()


_ALL_ALLOWED = {_T.DELETE_ROSPEC, _T.ENABLE_ROSPEC, _T.DISABLE_ROSPEC}  # ROSpecID 0 = all


def _rospec_command(table: RoSpecTable, message: Message) -> LlrpStatus:
    spec_id = message.spec_id()
    if spec_id == 0 and message.type in _ALL_ALLOWED:
        for held_id in list(table.specs):
            _one_rospec(table, message.type, held_id)
        return _ok()
    if spec_id not in table.specs:
        return _error(StatusCode.FIELD_ERROR, f"no ROSpec {spec_id}", (0, StatusCode.A_INVALID))
    return _one_rospec(table, message.type, spec_id)


def _one_rospec(table: RoSpecTable, command: int, spec_id: int) -> LlrpStatus:
    held = table.specs[spec_id]
    if command == _T.DELETE_ROSPEC:
        table.stop(held, SpecState.DISABLED)
        del table.specs[spec_id]
    elif command == _T.ENABLE_ROSPEC:
        if held.state is SpecState.DISABLED:
            immediate = held.spec.start_trigger == START_IMMEDIATE
            held.state = SpecState.ACTIVE if immediate else SpecState.INACTIVE
    elif command == _T.DISABLE_ROSPEC:
        table.stop(held, SpecState.DISABLED)
    elif command == _T.START_ROSPEC:
        if held.state is SpecState.DISABLED:
            return _error(StatusCode.FIELD_ERROR, f"ROSpec {spec_id} is disabled")
        held.state = SpecState.ACTIVE
    elif held.state is SpecState.ACTIVE:  # STOP_ROSPEC
        table.stop(held, SpecState.INACTIVE)
    return _ok()


def _add_rospec(table: RoSpecTable, message: Message) -> LlrpStatus:
    param = message.param(ROSPEC)
    if param is None:
        return _error(StatusCode.MISSING_PARAMETER, "ADD_ROSPEC without ROSpec")
    try:
        spec = RoSpec.from_parameter(param)
    except (DecodeError, IndexError, ValueError, struct.error) as err:
        return _error(StatusCode.PARAMETER_ERROR, f"bad ROSpec: {err}"[:200])
    if spec.rospec_id == 0 or spec.rospec_id in table.specs:
        return _error(StatusCode.FIELD_ERROR, f"ROSpec id {spec.rospec_id} invalid or in use")
    antennas = {a for ai in spec.ai_specs for a in ai.antennas}
    if any(a > table.profile.antennas for a in antennas):
        return _error(StatusCode.FIELD_ERROR, f"no such antenna in {sorted(antennas)}")
    if spec.report is None:  # LLRP 1.0.1 §10.2.1: the reader's own ROReportSpec applies
        spec = dataclasses.replace(spec, report=table.config.report)
    table.specs[spec.rospec_id] = _Held(spec, param)
    return _ok()


def _rospecs(table: RoSpecTable, message: Message) -> Reply:
    """GET_ROSPECS: each ROSpec as added, with its CurrentState as it is now."""
    params = [
        held.param._replace(value=held.param.value[:5] + bytes((held.state.value,)))
        for held in table.specs.values()
    ]
    return _answer(message, _ok(), *params)


def _set_config(table: RoSpecTable, message: Message) -> LlrpStatus:
    if message.fields and message.fields[0] & 0x80:  # ResetToFactoryDefault, applied first
        table.specs.clear()
        table.config = ReaderConfig()
    config = table.config
    try:
        if (ka := message.param(KEEPALIVE_SPEC)) is not None:
            config.keepalive = KeepaliveSpec.from_parameter(ka)
        if (report := message.param(RO_REPORT_SPEC)) is not None:
            config.report = ReportSpec.from_parameter(report)
        if (hold := message.param(_EVENTS_AND_REPORTS)) is not None:
            config.hold_events = bool(hold.value[0] & 0x80)
        if (access := message.param(_ACCESS_REPORT_SPEC)) is not None:
            config.access_report_trigger = access.value[0]
        if (events := message.param(_EVENT_NOTIFICATION_SPEC)) is not None:
            for state in events.children:
                event, flags = struct.unpack(">HB", state.value)
                config.events[event] = bool(flags & 0x80)
    except (DecodeError, IndexError, struct.error) as err:
        return _error(StatusCode.PARAMETER_ERROR, f"bad reader configuration: {err}"[:200])
    return _ok()


def _get_config(table: RoSpecTable, message: Message) -> Reply:
    antenna, requested, gpi, gpo = struct.unpack(">HBHH", message.fields)
    reply = config_response(
        message.id,
        table.profile,
        table.config,
        antenna=antenna,
        requested=requested,
        gpi_port=gpi,
        gpo_port=gpo,
    )
    return reply, False


def _supported_version(_table: RoSpecTable, message: Message) -> Reply:
    """LLRP 1.1 negotiation: this reader's current and highest version are both 1.0.1."""
    fields = bytes((LLRP_1_0_1, LLRP_1_0_1))
    reply = Message(
        _T.GET_SUPPORTED_VERSION_RESPONSE,
        message.id,
        fields,
        (LlrpStatus().to_parameter(),),
        version=message.version,
    )
    return reply, False


def _set_version(_table: RoSpecTable, message: Message) -> Reply:
    wanted = message.fields[0]
    status = (
        _ok()
        if wanted == LLRP_1_0_1
        else _error(StatusCode.UNSUPPORTED_VERSION, f"LLRP version {wanted} is not supported")
    )
    return _answer(message, status)


Reply = tuple[Message | None, bool]
"""A response (or None) and whether the connection closes after it."""


def _answer(message: Message, status: LlrpStatus, *params: Parameter) -> Reply:
    return response(message.type + 10, message.id, status, *params), False


def _access_command(table: RoSpecTable, message: Message) -> Reply:
    spec_id = message.spec_id()
    ok = message.type == _T.DELETE_ACCESSSPEC and spec_id == 0
    return _answer(
        message, _ok() if ok else _error(StatusCode.FIELD_ERROR, f"no AccessSpec {spec_id}")
    )


def _enable_events(table: RoSpecTable, _message: Message) -> Reply:
    table.events_enabled = True
    return None, False


def _get_report(table: RoSpecTable, _message: Message) -> Reply:
    table.pending_report = True
    return None, False


_HANDLERS: dict[int, Callable[[RoSpecTable, Message], Reply]] = {
    _T.GET_READER_CAPABILITIES: lambda t, m: (
        capabilities_response(m.id, t.profile, m.fields[0]),
        False,
    ),
    _T.GET_READER_CONFIG: _get_config,
    _T.SET_READER_CONFIG: lambda t, m: _answer(m, _set_config(t, m)),
    _T.ENABLE_EVENTS_AND_REPORTS: _enable_events,
    _T.ADD_ROSPEC: lambda t, m: _answer(m, _add_rospec(t, m)),
    _T.GET_ROSPECS: _rospecs,
    _T.GET_SUPPORTED_VERSION: _supported_version,
    _T.SET_PROTOCOL_VERSION: _set_version,
    _T.GET_ACCESSSPECS: lambda _t, m: _answer(m, _ok()),
    _T.ADD_ACCESSSPEC: lambda _t, m: _answer(
        m, _error(StatusCode.DEVICE_ERROR, "AccessSpecs are not supported")
    ),
    _T.GET_REPORT: _get_report,
    _T.KEEPALIVE_ACK: lambda _t, _m: (None, False),
    _T.CLOSE_CONNECTION: lambda _t, m: (response(_T.CLOSE_CONNECTION_RESPONSE, m.id), True),
}
for _type in (
    _T.DELETE_ROSPEC,
    _T.ENABLE_ROSPEC,
    _T.DISABLE_ROSPEC,
    _T.START_ROSPEC,
    _T.STOP_ROSPEC,
):
    _HANDLERS[_type] = lambda t, m: _answer(m, _rospec_command(t, m))
for _type in (_T.DELETE_ACCESSSPEC, _T.ENABLE_ACCESSSPEC, _T.DISABLE_ACCESSSPEC):
    _HANDLERS[_type] = _access_command


def handle_request(table: RoSpecTable, message: Message) -> Reply:
    """Apply ``message``; return ``(reply or None, close the connection?)``."""
    if message.version != LLRP_1_0_1 and message.type != _T.GET_SUPPORTED_VERSION:
        status = _error(
            StatusCode.UNSUPPORTED_VERSION,
            f"LLRP version {message.version} is not supported; this reader speaks LLRP 1.0.1",
        )
        return response(_T.ERROR_MESSAGE, message.id, status), False
    handler = _HANDLERS.get(message.type)
    if handler is None:
        status = _error(StatusCode.UNSUPPORTED_MESSAGE, f"message {message.name} not supported")
        return response(_T.ERROR_MESSAGE, message.id, status), False
    try:
        return handler(table, message)
    except (DecodeError, IndexError, ValueError, struct.error) as err:
        # Parameters that decode but do not hold together: refused, the connection stays.
        status = _error(StatusCode.PARAMETER_ERROR, f"malformed {message.name}: {err}"[:200])
        return response(_T.ERROR_MESSAGE, message.id, status), False
