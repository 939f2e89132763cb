"""Chooses a decoder by topic and turns every failure into a ``DeadLetter``.

The first spec whose pattern matches the topic decodes the message. Whatever goes wrong (no
matching spec, a payload too large, bad JSON, a wrong type, an implausible value) comes back as a
``DeadLetter`` carrying the reason and the raw bytes, next to every reading that did decode;
:meth:`PayloadRouter.decode` never raises for bad input.

>>> from datetime import datetime, UTC
>>> router = PayloadRouter([DecoderSpec(topic="coldtrace/+/readings", format="coldtrace-json")])
>>> router.subscriptions
('coldtrace/+/readings',)
>>> [r.kind for r in router.decode("coldtrace/s1/readings", b"{oops",
...                                 datetime(2026, 3, 1, tzinfo=UTC))]
['dead_letter']
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import ValidationError

from protocols.payloads import chirpstack, coldtrace_json, shelly, tasmota
from protocols.payloads.common import Decoded, Message, PayloadError
from protocols.payloads.spec import DecoderSpec, PayloadFormat
from protocols.records import DeadLetter, Reading

DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024
_MAX_REASON = 2000
_MAX_SOURCE = 256

_Decoder = Callable[[Message, DecoderSpec, dict[str, str]], Decoded]
_DECODERS: dict[PayloadFormat, _Decoder] = {
    PayloadFormat.COLDTRACE_JSON: coldtrace_json.decode,
    PayloadFormat.CHIRPSTACK_V4: chirpstack.decode,
    PayloadFormat.TASMOTA: tasmota.decode,
    PayloadFormat.SHELLY_GEN2: shelly.decode,
    PayloadFormat.SHELLY_GEN2_RPC: shelly.decode_rpc,
}
# Errors a decoder may meet on hostile input; each becomes a dead letter, never a crash.
_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, struct.error)


class PayloadRouter:
    """Decodes MQTT messages with the first matching :class:`DecoderSpec`."""

    def __init__(
        self, specs: Sequence[DecoderSpec], *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    ) -> None:
        if not specs:
            raise ValueError("at least one decoder spec is needed")
        if max_payload_bytes < 1:
            raise ValueError("max_payload_bytes must be positive")
        self._specs = tuple(specs)
        self._max = max_payload_bytes

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The MQTT topic filters to subscribe to, without duplicates, in spec order."""
        return tuple(dict.fromkeys(spec.pattern.subscription for spec in self._specs))

    def decode(
        self, topic: str, payload: bytes, received_at: datetime, *, retained: bool = False
    ) -> tuple[Reading | DeadLetter, ...]:
        """Readings and dead letters for one message; see the module docstring."""
        message = Message(topic, payload, received_at, retained)
        if len(payload) > self._max:
            return (
                _dead(
                    message,
                    f"payload of {len(payload)} bytes exceeds the {self._max}-byte limit; "
                    f"its first {self._max} bytes are kept",
                    payload[: self._max],
                ),
            )
        for spec in self._specs:
            captures = spec.pattern.match(topic)
            if captures is not None:
                return _run(_DECODERS[spec.format], message, spec, captures)
        return (_dead(message, "no decoder is configured for this topic"),)


def _run(
    decoder: _Decoder, message: Message, spec: DecoderSpec, captures: dict[str, str]
) -> tuple[Reading | DeadLetter, ...]:
    what = spec.format.value
    try:
        decoded = decoder(message, spec, captures)
    except PayloadError as err:
        return (_dead(message, f"{what}: {err}"),)
    except ValidationError as err:
        return (_dead(message, f"{what}: record refused: {_first_error(err)}"),)
    except _INPUT_ERRORS as err:
        return (_dead(message, f"{what}: {type(err).__name__}: {err}"),)
    records: list[Reading | DeadLetter] = list(decoded.readings)
    if decoded.problems:
        records.append(_dead(message, f"{what}: " + "; ".join(decoded.problems)))
    return tuple(records)


def _first_error(err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else str(first["msg"])


def _dead(message: Message, reason: str, raw: bytes | None = None) -> DeadLetter:
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 1] + "…"
    return DeadLetter(
        source=f"mqtt:{message.topic}"[:_MAX_SOURCE],
        reason=reason,
        raw=message.payload if raw is None else raw,
        received_at=message.received_at,
    )
