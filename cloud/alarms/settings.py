"""Typed settings of the alarms room (part of ``CloudSettings.alarms``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

Positive = Annotated[timedelta, Field(gt=timedelta(0))]


class AlarmSettings(BaseModel):
    """Delivery of notifications, escalation ticks and the condition checks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_worker: bool = True
    public_url: HttpUrl = HttpUrl("http://127.0.0.1:8000")
    """Base URL people reach the service at: the links in messages start with it."""
    poll_interval: Positive = timedelta(seconds=2)
    """Fallback when no NOTIFY wakes the worker; escalation timers are checked this often."""
    send_timeout: Positive = timedelta(seconds=20)
    lease: Positive = timedelta(minutes=2)
    """How long a claimed delivery is someone's; after that another process may send it."""
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 6
    backoff_initial: Positive = timedelta(seconds=10)
    backoff_max: Positive = timedelta(minutes=5)
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 50
    concurrency: Annotated[int, Field(ge=1, le=100)] = 10
    channel_failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    """Consecutive failures after which a channel raises its own alarm and the alarms it
    failed to carry move to their next step at once."""
    ack_link_ttl: Positive = timedelta(days=7)
    conditions_interval: Positive = timedelta(minutes=1)
    gateway_offline_after: Positive = timedelta(minutes=10)
    never_reported_after: Positive = timedelta(minutes=30)
    battery_low_percent: Annotated[float, Field(ge=0, le=100)] = 20.0
    signal_low_dbm: Annotated[float, Field(ge=-200, le=0)] = -90.0
    clock_skew_limit: Positive = timedelta(minutes=2)
    clock_skew_window: Positive = timedelta(minutes=15)
    calibration_lead: Positive = timedelta(days=14)
    """How long before a sensor's calibration falls due ``calibration_due`` is raised."""
    calibration_interval: Positive = timedelta(hours=1)
    """How often the calibration job looks for calibrations due soon or overdue."""

    @model_validator(mode="after")
    def _lease_covers_send(self) -> AlarmSettings:
        if self.lease <= self.send_timeout:
            raise ValueError("lease must be longer than send_timeout, or a slow send is resent")
        return self
