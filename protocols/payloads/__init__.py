"""MQTT payload decoders: device messages in, ``Reading`` records (or ``DeadLetter``) out.

Pure and I/O-free. A :class:`DecoderSpec` names a topic pattern (``+``/``#`` wildcards, ``{name}``
captures), a payload format and how sensor ids are built; a :class:`PayloadRouter` picks the
first matching spec for each message. Formats: ``coldtrace-json`` (our own), ``chirpstack-v4``
(uplink events, codec ``object`` or Milesight EM300-TH bytes), ``tasmota`` (``tele/<dev>/SENSOR``)
``shelly-gen2`` (``<id>/status/temperature:0``) and ``shelly-gen2-rpc`` (``<id>/events/rpc``).

Exception tree (the router catches all of them and returns a ``DeadLetter``)::

    ValueError
    ├── PayloadError          a payload that cannot be decoded; its text is the dead letter's reason
    └── TopicPatternError     a topic pattern that is not a valid MQTT filter (configuration)

>>> from datetime import datetime, UTC
>>> router = PayloadRouter([DecoderSpec(topic="coldtrace/+/readings", format="coldtrace-json")])
>>> out = router.decode("coldtrace/s1/readings",
...     b'{"sensor_id": "f1/t", "time": "2026-03-01T12:00:00Z", "value": 4.5, "unit": "degC"}',
...     datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC))
>>> [(r.kind, r.sensor_id, r.value) for r in out]
[('reading', 'f1/t', 4.5)]
"""

from protocols.payloads.common import Message, PayloadError
from protocols.payloads.router import DEFAULT_MAX_PAYLOAD_BYTES, PayloadRouter
from protocols.payloads.spec import DecoderSpec, PayloadFormat
from protocols.payloads.topics import TopicPattern, TopicPatternError

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DecoderSpec",
    "Message",
    "PayloadError",
    "PayloadFormat",
    "PayloadRouter",
    "TopicPattern",
    "TopicPatternError",
]
