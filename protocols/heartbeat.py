"""The gateway's heartbeat: ``POST /v1/gateway/heartbeat`` when it has sent nothing else for a
while, so an idle gateway (a quiet dock door at night, no readings) still shows it is alive.

The cloud records the contact for every request a gateway makes with its token; the heartbeat
adds the interval the agent keeps, so the alarm ``gateway_offline`` waits at least three of them.

>>> from datetime import UTC, datetime
>>> Heartbeat(interval_seconds=60, sent_at=datetime(2026, 1, 1, tzinfo=UTC)).model_dump_json()
'{"interval_seconds":60,"sent_at":"2026-01-01T00:00:00Z"}'
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from protocols.records import UtcDatetime

HEARTBEAT_PATH = "/v1/gateway/heartbeat"
MIN_INTERVAL_SECONDS = 10
MAX_INTERVAL_SECONDS = 3600

IntervalSeconds = Annotated[int, Field(ge=MIN_INTERVAL_SECONDS, le=MAX_INTERVAL_SECONDS)]


class Heartbeat(BaseModel):
    """The agent's heartbeat interval, and when it sent this one (on the gateway's clock)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval_seconds: IntervalSeconds
    sent_at: UtcDatetime
