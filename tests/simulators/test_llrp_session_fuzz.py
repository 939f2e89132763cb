"""The simulated reader's request handling never raises, whatever a client sends: random
parameter trees in every message type get a response or an ERROR_MESSAGE, and the session goes
on (a crash here would drop the connection of a client that sent one odd message)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.llrp.messages import FIXED_FIELDS, Message, MessageType
from protocols.llrp.params import TLV_FIXED, Parameter, tlv
from protocols.llrp.reports import StatusCode, status_of
from simulators.llrp_device import DeviceProfile
from simulators.llrp_session import RoSpecTable, handle_request
from simulators.scene import dock_door

_TYPES = sorted(TLV_FIXED)
_leaf = st.builds(tlv, st.sampled_from(_TYPES), st.binary(max_size=12))
_params: st.SearchStrategy[Parameter] = st.recursive(
    _leaf,
    lambda children: st.builds(
        lambda t, v, c: tlv(t, v, *c),
        st.sampled_from(_TYPES),
        st.binary(max_size=12),
        st.lists(children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from([t for t in MessageType if t != MessageType.CUSTOM_MESSAGE]),
    fields=st.binary(max_size=8),
    params=st.lists(_params, max_size=4),
    version=st.sampled_from([1, 1, 1, 2]),
)
def test_any_request_gets_an_answer_or_none_and_never_raises(
    kind: MessageType, fields: bytes, params: list[Parameter], version: int
) -> None:
    table = RoSpecTable(dock_door(seed=1), DeviceProfile())
    size = FIXED_FIELDS.get(kind, 0)
    message = Message(kind, 7, fields.ljust(size, b"\x00")[:size], tuple(params), version)
    reply, _close = handle_request(table, message)
    if reply is not None:
        assert reply.id == 7
        reply.encode()  # a reply can always be sent


_BOUNDARY_WITH_SHORT_STOP = tlv(178, b"", tlv(179, b"\x01"), tlv(182, b"\x00"))
_AI_WITH_SHORT_STOP = tlv(183, b"\x00\x01\x00\x01", tlv(184, b"\x01"))


@pytest.mark.parametrize(
    "message",
    [
        # ROSpec parameters that decode but whose fields are too short for what they are.
        Message(MessageType.ADD_ROSPEC, 7, b"", (tlv(177, bytes(6), _BOUNDARY_WITH_SHORT_STOP),)),
        Message(
            MessageType.ADD_ROSPEC,
            7,
            b"",
            (
                tlv(
                    177,
                    b"\x00\x00\x00\x02\x00\x00",
                    tlv(178, b"", tlv(179, b"\x01"), tlv(182, bytes(5))),
                    _AI_WITH_SHORT_STOP,
                ),
            ),
        ),
        Message(MessageType.SET_READER_CONFIG, 7, b"\x00", (tlv(244, b"", tlv(245, b"\x00")),)),
        Message(MessageType.SET_READER_CONFIG, 7, b"\x00", (tlv(237, b"\x01\x00\x01"),)),
    ],
)
def test_parameters_that_do_not_hold_together_are_refused(message: Message) -> None:
    table = RoSpecTable(dock_door(seed=1), DeviceProfile())
    reply, close = handle_request(table, message)
    assert reply is not None
    assert not close
    assert status_of(reply).code in (StatusCode.PARAMETER_ERROR, StatusCode.FIELD_ERROR)
    assert table.specs == {}
