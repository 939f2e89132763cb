"""Typed configuration of the cloud service, read once in the composition root."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PostgresDsn, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud.accounts.settings import AccountSettings
from cloud.alarms.settings import AlarmSettings
from cloud.coldchain.alerts import AlertSettings
from cloud.ingest.admission import AdmissionSettings
from cloud.ledger.settings import LedgerSettings
from cloud.limits.config import RequestLimits
from cloud.storage.database import Timeouts

PositiveDelta = Annotated[timedelta, Field(gt=timedelta(0))]


class ProcessorSettings(BaseModel):
    """How the processor waits for work and backs off a stream whose steps fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    poll_interval: PositiveDelta = timedelta(seconds=5)
    """Polling fallback when no NOTIFY arrives (a lost listener, a notification missed)."""
    retry_initial: PositiveDelta = timedelta(seconds=1)
    retry_max: PositiveDelta = timedelta(minutes=5)
    reconnect_delay: PositiveDelta = timedelta(seconds=1)
    stall_after: Annotated[int, Field(ge=1)] = 3
    """Failures of the same stream in a row after which it is reported stalled (alert, health)."""
    timeouts: Timeouts = Timeouts(
        statement=timedelta(minutes=1),
        lock=timedelta(seconds=10),
        idle_in_transaction=timedelta(minutes=1),
    )
    """Bounds of one processing transaction: a step stuck on a lock fails and is retried."""


RETAINABLE_TABLES = frozenset(
    {"readings", "tag_reads", "anomaly_scores", "device_status", "dead_letters",
     "portal_passages", "ingest_batches"}
)  # fmt: skip


class JobSettings(BaseModel):
    """Maintenance jobs: retention per table, rollups, stale-device detection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retention: dict[str, PositiveDelta] = Field(
        default_factory=lambda: {"ingest_batches": timedelta(days=90)}
    )
    """Age after which rows are deleted, per table; a table not listed is kept forever.
    Regulated records (GDP) are usually kept for years: set them deliberately."""
    retention_interval: PositiveDelta = timedelta(hours=1)
    retention_batch_rows: Annotated[int, Field(ge=100)] = 10_000
    rollup_interval: PositiveDelta = timedelta(minutes=1)
    rollup_settle: PositiveDelta = timedelta(minutes=2)
    """Rollups read rows stored up to this long ago: longer than any ingest transaction."""
    stale_interval: PositiveDelta = timedelta(minutes=1)
    default_silence: PositiveDelta = timedelta(minutes=15)
    """Silence interval of a sensor whose location has no storage profile."""
    silence_check_interval: PositiveDelta = timedelta(minutes=1)
    report_interval: PositiveDelta = timedelta(minutes=15)
    """How often scheduled reports are looked for (made once per period, then e-mailed)."""
    """How often the cold-chain engine checks sensors against the wall clock: a sensor whose
    gateway went quiet opens a "no data" condition even though no batch arrives to say so."""
    timeouts: Timeouts = Timeouts(
        statement=timedelta(minutes=15),
        lock=timedelta(seconds=5),
        idle_in_transaction=timedelta(minutes=5),
    )
    """Jobs may run long, but never queue for a lock (drop_chunks behind a long read would
    block every reader behind it)."""

    @field_validator("retention")
    @classmethod
    def _known_tables(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        unknown = set(value) - RETAINABLE_TABLES
        if unknown:
            raise ValueError(
                f"retention is not allowed for {sorted(unknown)} (the ledger is never pruned);"
                f" allowed: {sorted(RETAINABLE_TABLES)}"
            )
        return value


class CloudSettings(BaseSettings):
    """Settings from ``COLDTRACE_CLOUD_*`` environment variables or keyword arguments."""

    model_config = SettingsConfigDict(
        env_prefix="COLDTRACE_CLOUD_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: PostgresDsn
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    pool_min_size: Annotated[int, Field(ge=1)] = 1
    pool_max_size: Annotated[int, Field(ge=1)] = 10
    pool_timeout: timedelta = timedelta(seconds=10)
    max_batch_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    """Largest request body accepted, as sent (compressed)."""
    max_batch_decompressed_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    """Largest body after gzip inflation (a zip bomb stops here)."""
    ingest_timeouts: Timeouts = Timeouts(
        statement=timedelta(seconds=30),
        lock=timedelta(seconds=2),
        idle_in_transaction=timedelta(seconds=30),
    )
    """One batch's transaction; the stream lock is waited for at most ``lock`` (then 503)."""
    stream_wait: PositiveDelta = timedelta(seconds=5)
    """How long a batch waits in the process for another request of the same stream before it
    is answered 503 with Retry-After (it holds no database connection while it waits)."""
    read_timeouts: Timeouts = Timeouts()
    """Session bounds of the API's pool (reads, admin writes)."""
    run_processor: bool = True
    run_scheduler: bool = True
    processor: ProcessorSettings = ProcessorSettings()
    jobs: JobSettings = JobSettings()
    alerts: AlertSettings = AlertSettings()
    """Webhook delivery of alerts; without ``webhook_url`` alerts stay in the alarm list only."""
    admission: AdmissionSettings = AdmissionSettings()
    """Backlog and future horizons and the chunk bound ingest applies (cloud.ingest.admission)."""
    alarms: AlarmSettings = AlarmSettings()
    """Notifications to people: delivery, escalation, links, condition checks (docs/alarms.md)."""
    limits: RequestLimits = RequestLimits()
    """Body sizes, body times and the in-flight byte budget of every request."""
    ledger: LedgerSettings = LedgerSettings()
    """The ledger signing key (outside the database) and the signed head export."""
    accounts: AccountSettings = AccountSettings()
    """Lock-out after failed sign-ins and signatures, password length, TOTP issuer name."""

    @model_validator(mode="after")
    def _budget_holds_one_batch(self) -> CloudSettings:
        batch = self.max_batch_bytes + self.max_batch_decompressed_bytes
        if self.limits.inflight_bytes < batch:
            raise ValueError(
                f"limits.inflight_bytes ({self.limits.inflight_bytes}) must hold one batch and"
                f" its inflation (max_batch_bytes + max_batch_decompressed_bytes = {batch})"
            )
        return self
