"""The edge→cloud batch contract, version 1.

A gateway numbers every record it commits to its outbox with a sequence number, without gaps,
starting at 1 for each ``boot_id`` (a new boot id is drawn whenever the outbox file is created).
A batch carries a contiguous run of those numbers; the cloud answers with ``stored_through``, the
highest sequence of that (gateway, boot) it has durably stored. The gateway deletes up to it.

>>> from datetime import datetime, UTC
>>> from uuid import UUID
>>> from protocols.records import DeviceStatus, DeviceState
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> rec = DeviceStatus(device_id="gw-1", device_type="gateway", state=DeviceState.ONLINE, time=t)
>>> b = Batch(gateway_id="gw-1", boot_id=UUID(int=1), sent_at=t,
...           records=[Sequenced(seq=5, record=rec)])
>>> (b.first_seq, b.last_seq)
(5, 5)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.records import INT8_MAX, DeviceId, Record, UtcDatetime

SCHEMA_VERSION: Literal[1] = 1
MAX_RECORDS_PER_BATCH = 10_000
CONTENT_TYPE = "application/json"
"""Batches travel as gzip-compressed JSON (``Content-Encoding: gzip``)."""


class Sequenced(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: Annotated[int, Field(ge=1, le=INT8_MAX)]
    record: Record


class OutboxReport(BaseModel):
    """How much waits in the gateway's outbox as it sends a batch (that batch included).

    Optional in a batch: gateways before it send none, and the cloud keeps working without it.
    ``oldest_age`` is measured on the gateway's own clock (``sent_at`` minus the oldest record's
    commit to the outbox), so a skewed clock does not distort it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    pending: Annotated[int, Field(ge=0, le=INT8_MAX)]
    oldest_age: Annotated[timedelta, Field(ge=timedelta(0))] | None = None


class Batch(BaseModel):
    """A contiguous run of one gateway's outbox, oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: DeviceId
    boot_id: UUID
    sent_at: UtcDatetime
    records: Annotated[list[Sequenced], Field(min_length=1, max_length=MAX_RECORDS_PER_BATCH)]
    outbox: OutboxReport | None = None
    """The gateway's outbox depth at sending; absent from older gateways."""

    @model_validator(mode="after")
    def _contiguous(self) -> Batch:
        first = self.records[0].seq
        for offset, item in enumerate(self.records):
            if item.seq != first + offset:
                raise ValueError(
                    f"sequence numbers must be contiguous and ascending: expected "
                    f"{first + offset}, found {item.seq} at position {offset}"
                )
        return self

    @property
    def first_seq(self) -> int:
        return self.records[0].seq

    @property
    def last_seq(self) -> int:
        return self.records[-1].seq


class BatchAck(BaseModel):
    """The cloud's answer: everything of (gateway, boot) up to ``stored_through`` is stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway_id: DeviceId
    boot_id: UUID
    stored_through: Annotated[int, Field(ge=0)]


class BatchError(BaseModel):
    """A 4xx answer: why the batch was refused. The gateway must not resend it unchanged."""

    model_config = ConfigDict(frozen=True)

    error: str
    detail: list[dict[str, object]] | str | None = None
