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

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from protocols.llrp.errors import DecodeError
from protocols.llrp.messages import Message, MessageType
from protocols.llrp.params import Parameter
from protocols.llrp.reports import LlrpStatus, StatusCode, response
from protocols.llrp.specs import KEEPALIVE_SPEC, ROSPEC, START_IMMEDIATE, KeepaliveSpec, RoSpec
from simulators.llrp_device import DeviceProfile, capabilities_response, config_response
from simulators.llrp_inventory import InventoryRun
from simulators.scene import Scene

_T = MessageType


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
        self.keepalive = KeepaliveSpec()
        self.events_enabled = False
        self.pending_report = False

    def keepalive_interval(self) -> float | None:
        """Seconds between KEEPALIVEs, or None when the client asked for none."""
        ka = self.keepalive
        if ka.trigger != 1 or ka.interval_ms <= 0:
            return None
        return ka.interval_ms / 1000

    def active_run(self, epoch_us: int) -> InventoryRun | None:
        for held in self.specs.values():
            if held.state is SpecState.ACTIVE:
                if held.run is None:
                    held.run = InventoryRun(held.spec, self.scene, epoch_us)
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
        held.state, held.run = state, None


def _error(code: int, text: str, field: tuple[int, int] | None = None) -> LlrpStatus:
    return LlrpStatus(code, text, field)


def _ok() -> LlrpStatus:
    return LlrpStatus()


def _rospec_command(table: RoSpecTable, message: Message) -> LlrpStatus:
    spec_id = message.spec_id()
    if message.type == _T.DELETE_ROSPEC and spec_id == 0:
        table.specs.clear()
        return _ok()
    held = table.specs.get(spec_id)
    if held is None:
        return _error(StatusCode.FIELD_ERROR, f"no ROSpec {spec_id}", (0, StatusCode.A_INVALID))
    if message.type == _T.DELETE_ROSPEC:
        del table.specs[spec_id]
    elif message.type == _T.ENABLE_ROSPEC:
        if held.state is SpecState.DISABLED:
            immediate = held.spec.start_trigger == START_IMMEDIATE
            held.state = SpecState.ACTIVE if immediate else SpecState.INACTIVE
    elif message.type == _T.DISABLE_ROSPEC:
        table.stop(held, SpecState.DISABLED)
    elif message.type == _T.START_ROSPEC:
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
    except (DecodeError, IndexError, ValueError) as err:  # struct errors are ValueErrors
        return _error(StatusCode.PARAMETER_ERROR, f"bad ROSpec: {err}"[:200])
    if spec.rospec_id == 0 or spec.rospec_id in table.specs:
        return _error(StatusCode.FIELD_ERROR, f"ROSpec id {spec.rospec_id} invalid or in use")
    antennas = {a for ai in spec.ai_specs for a in ai.antennas}
    if any(a > table.profile.antennas for a in antennas):
        return _error(StatusCode.FIELD_ERROR, f"no such antenna in {sorted(antennas)}")
    table.specs[spec.rospec_id] = _Held(spec, param)
    return _ok()


def _set_config(table: RoSpecTable, message: Message) -> LlrpStatus:
    ka = message.param(KEEPALIVE_SPEC)
    if ka is not None:
        try:
            table.keepalive = KeepaliveSpec.from_parameter(ka)
        except DecodeError as err:
            return _error(StatusCode.PARAMETER_ERROR, str(err))
    if message.fields and message.fields[0] & 0x80:  # ResetToFactoryDefault
        table.specs.clear()
        table.keepalive = KeepaliveSpec()
    return _ok()


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
    _T.GET_READER_CAPABILITIES: lambda t, m: (capabilities_response(m.id, t.profile), False),
    _T.GET_READER_CONFIG: lambda t, m: (
        config_response(m.id, t.profile, t.keepalive, held=False),
        False,
    ),
    _T.SET_READER_CONFIG: lambda t, m: _answer(m, _set_config(t, m)),
    _T.ENABLE_EVENTS_AND_REPORTS: _enable_events,
    _T.ADD_ROSPEC: lambda t, m: _answer(m, _add_rospec(t, m)),
    _T.GET_ROSPECS: lambda t, m: _answer(m, _ok(), *(h.param for h in t.specs.values())),
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
    handler = _HANDLERS.get(message.type)
    if handler is None:
        status = _error(StatusCode.UNSUPPORTED_MESSAGE, f"message {message.name} not supported")
        return response(_T.ERROR_MESSAGE, message.id, status), False
    return handler(table, message)
