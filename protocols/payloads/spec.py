"""Configuration of one decoder: which topics, which payload format, how sensors are named.

The sensor id is a template filled from the topic's named captures and from variables the
format provides (``{sensor_id}`` of our JSON, ``{dev_eui}`` / ``{device_name}`` of ChirpStack,
``{sensor}`` of Tasmota, ``{component_id}`` and ``{src}`` of Shelly). Wrong configuration is
refused when the spec is built, with a message naming the field.

>>> spec = DecoderSpec(topic="tele/{device}/SENSOR", format="tasmota",
...                    sensor_id="{device}/{sensor}", timezone="Europe/Paris")
>>> spec.pattern.subscription
'tele/+/SENSOR'
>>> render_sensor_id(spec, {"device": "fridge-3", "sensor": "DS18B20"})
'fridge-3/DS18B20'
"""

from __future__ import annotations

import re
import string
from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from protocols.payloads.common import PayloadError
from protocols.payloads.topics import TopicPattern, TopicPatternError
from protocols.records import Quality

_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@#+-]{0,127}$")


class PayloadFormat(StrEnum):
    COLDTRACE_JSON = "coldtrace-json"
    CHIRPSTACK_V4 = "chirpstack-v4"
    TASMOTA = "tasmota"
    SHELLY_GEN2 = "shelly-gen2"
    SHELLY_GEN2_RPC = "shelly-gen2-rpc"


FORMAT_VARIABLES: dict[PayloadFormat, frozenset[str]] = {
    PayloadFormat.COLDTRACE_JSON: frozenset({"sensor_id"}),
    PayloadFormat.CHIRPSTACK_V4: frozenset({"dev_eui", "device_name"}),
    PayloadFormat.TASMOTA: frozenset({"sensor"}),
    PayloadFormat.SHELLY_GEN2: frozenset({"component_id"}),
    PayloadFormat.SHELLY_GEN2_RPC: frozenset({"src", "component_id"}),
}
_DEFAULT_TEMPLATES = {
    PayloadFormat.COLDTRACE_JSON: "{sensor_id}",
    PayloadFormat.CHIRPSTACK_V4: "{dev_eui}",
}


class DecoderSpec(BaseModel):
    """One topic pattern and how to decode what arrives on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str = Field(description="MQTT filter; a level written {name} is captured")
    format: PayloadFormat
    sensor_id: str | None = Field(
        default=None, description="template of the sensor id; default per format"
    )
    humidity_suffix: str | None = Field(
        default="/rh", description="appended to the sensor id for humidity; None: not recorded"
    )
    timezone: str | None = Field(
        default=None, description="IANA zone of the device's local clock (Tasmota)"
    )
    object_temperature: str = "temperature"
    object_humidity: str = "humidity"
    receipt_time_quality: Quality = Field(
        default=Quality.UNCERTAIN,
        description="quality of readings timed by receipt because the device sends no time",
    )
    ignore_sensors: tuple[str, ...] = Field(
        default=("ESP32",), description="Tasmota keys that are not storage sensors (chip temp)"
    )

    @field_validator("topic")
    @classmethod
    def _valid_topic(cls, value: str) -> str:
        try:
            TopicPattern.parse(value)
        except TopicPatternError as err:
            raise ValueError(str(err)) from err
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as err:
                raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from err
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DecoderSpec:
        if self.format is PayloadFormat.TASMOTA and self.timezone is None:
            raise ValueError(
                "tasmota sends local time without offset: set 'timezone' to the device's zone"
            )
        allowed = FORMAT_VARIABLES[self.format] | set(self.pattern.names)
        used = _template_fields(self.template)
        unknown = used - allowed
        if unknown:
            raise ValueError(
                f"sensor_id template {self.template!r} uses {sorted(unknown)}; "
                f"available: {sorted(allowed)}"
            )
        return self

    @cached_property
    def pattern(self) -> TopicPattern:
        return TopicPattern.parse(self.topic)

    @cached_property
    def zone(self) -> ZoneInfo | None:
        return None if self.timezone is None else ZoneInfo(self.timezone)

    @property
    def template(self) -> str:
        if self.sensor_id is not None:
            return self.sensor_id
        default = _DEFAULT_TEMPLATES.get(self.format)
        if default is None:
            raise ValueError(f"format {self.format.value} needs a 'sensor_id' template")
        return default


def _template_fields(template: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"sensor_id template {template!r} is malformed: {err}") from err
    fields: set[str] = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"sensor_id template field {{{name}}} must be a plain name")
        fields.add(name)
    return fields


def render_sensor_id(spec: DecoderSpec, variables: dict[str, str]) -> str:
    """Fills the spec's sensor id template; raises PayloadError when the result is no valid id.

    >>> spec = DecoderSpec(topic="{site}/readings", format="coldtrace-json",
    ...                    sensor_id="{site}/{sensor_id}")
    >>> render_sensor_id(spec, {"site": "s1", "sensor_id": "f 1"})
    Traceback (most recent call last):
    ...
    protocols.payloads.common.PayloadError: sensor id 's1/f 1' is not a valid id
    """
    sensor_id = spec.template.format_map(variables)
    if not _DEVICE_ID.fullmatch(sensor_id):
        raise PayloadError(f"sensor id {sensor_id[:140]!r} is not a valid id")
    return sensor_id


def humidity_id(spec: DecoderSpec, sensor_id: str) -> str | None:
    """The humidity sensor id, or None when humidity is not recorded.

    >>> humidity_id(DecoderSpec(topic="x/+", format="coldtrace-json"), "fridge-1")
    'fridge-1/rh'
    """
    if spec.humidity_suffix is None:
        return None
    result = sensor_id + spec.humidity_suffix
    if not _DEVICE_ID.fullmatch(result):
        raise PayloadError(f"humidity sensor id {result[:140]!r} is not a valid id")
    return result
