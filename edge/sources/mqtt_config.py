"""The configuration of one MQTT source (``edge.sources.mqtt``): broker, session, decoders."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from protocols.payloads import DEFAULT_MAX_PAYLOAD_BYTES, DecoderSpec
from protocols.records import DeviceId

_MAX_SESSION_EXPIRY = timedelta(seconds=2**32 - 2)  # 2**32-1 means "never expires"


class MqttSourceConfig(BaseModel):
    """One broker connection and the decoders of the topics read from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: DeviceId = Field(default="mqtt", description="device id of the broker in statuses")
    broker_url: str = Field(description="mqtt://host:port or mqtts://host:port")
    client_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    mqtt_version: Literal["5", "3.1.1"] = Field(
        default="5",
        description="3.1.1 for brokers without MQTT 5 (aedes, some network servers' brokers)",
    )
    username: str | None = None
    password: SecretStr | None = None
    session_expiry: timedelta = Field(default=timedelta(days=7))
    keepalive: timedelta = Field(default=timedelta(seconds=30))
    in_flight: int = Field(default=100, ge=1, le=65535, description="Receive Maximum and slots")
    connect_timeout: timedelta = Field(default=timedelta(seconds=5))
    backoff_initial: timedelta = Field(default=timedelta(milliseconds=500))
    backoff_max: timedelta = Field(default=timedelta(seconds=30))
    poll_interval: timedelta = Field(
        default=timedelta(milliseconds=20), description="network loop tick; bounds ack latency"
    )
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, ge=1)
    decoders: tuple[DecoderSpec, ...] = Field(min_length=1)

    @field_validator("broker_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("broker_url must look like mqtt://host:1883 or mqtts://host:8883")
        try:
            _ = parts.port
        except ValueError as err:
            raise ValueError(f"broker_url has an invalid port: {value!r}") from err
        return value

    @model_validator(mode="after")
    def _durations(self) -> MqttSourceConfig:
        if not timedelta(seconds=1) <= self.session_expiry <= _MAX_SESSION_EXPIRY:
            raise ValueError("session_expiry must be between 1 s and about 136 years")
        if self.keepalive < timedelta(seconds=1):
            raise ValueError("keepalive must be at least 1 s")
        for name in ("connect_timeout", "backoff_initial", "poll_interval"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be below backoff_initial")
        return self

    @property
    def host(self) -> str:
        host = urlsplit(self.broker_url).hostname
        assert host is not None  # checked by the validator
        return host

    @property
    def port(self) -> int:
        parts = urlsplit(self.broker_url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)
