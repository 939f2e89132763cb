"""The uplink: sends the outbox's oldest records to the cloud and deletes what it acknowledged.

One loop, strictly in sequence order, because the cloud stores each (gateway, boot) stream
behind a high-water mark (``stored_through``) and refuses a batch that does not continue it
(409). Sending fresh records ahead of a backlog is therefore impossible without losing the
backlog; catch-up is made fast instead (batches of thousands of records, the JSON body built
from the stored text without re-serialising) and measured in ``bench/outbox.py``.

A batch is sent when it is full (records or bytes) or when its oldest record has waited
``linger`` (on the monotonic clock, from when the uplink first saw it: a wall-clock step does
not hold a record back). Answers are read with limits (``max_response_bytes`` on the wire and
inflated, ``edge.http_body``) within ``request_timeout`` in all. Answers:

- 200 ``BatchAck``: delete through ``stored_through`` (a partial ack leaves the rest to resend).
  A ``stored_through`` beyond what the outbox had numbered when the uplink started or has sent
  since means the outbox was rolled back (restored from a backup, or its filesystem lost its
  last writes), even when records appended since then have taken those numbers again: the
  records are renumbered under a new boot id (``Outbox.rebase``) and sent again, with the alarm
  ``outbox/rolled_back``, instead of being deleted as if the cloud had them.
- 5xx, 429, timeouts, connection errors, an answer that cannot be read (a gzip-labelled 502
  that does not inflate, a body over the limit) or any other unexpected failure of the
  exchange: jittered exponential backoff, ``Retry-After`` honoured. An acknowledgement the
  outbox cannot write (disk full even after releasing its reserve) is the same: the batch is
  resent later and the cloud skips what it has. Other outbox errors escape.
- 413: halve the batch size and retry.
- 422 naming records (``loc = ["records", i, ...]``), or a 422 for a batch of one record: those
  records are refused for good. They are replaced in the outbox by ``DeadLetter`` records holding
  the original bytes and the cloud's reason (the sequence stays contiguous, the cloud learns what
  was refused, nothing is dropped silently), an alarm is raised, and sending goes on.
- 422 naming only the batch's ``outbox`` report (a cloud older than that field): the report is
  left out of later batches and the batch is sent again at once.
- 422 without a record named: the batch is bisected (the limit halves) until the bad record
  is alone.
- 409 asking for an earlier sequence number (the cloud was restored to an earlier point and lost
  records it had acknowledged): resent from the outbox's replay window, or, where that no longer
  holds them, the gap is alarmed and sending goes on under a new boot (``edge.uplink_replay``).
- 401/403 (token), any other 409, 400/415 (the body itself),
  a 422 naming batch fields, and other 4xx: the
  uplink cannot fix them; it raises an alarm and retries at the longest backoff, keeping
  everything. An operator must act.

Exception tree::

    UplinkError
    └── CloudRefusedError   a 4xx answer that retrying unchanged will not fix
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Annotated
from uuid import UUID

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.alarms import AlarmSink, NoAlarms
from edge.backoff import backoff_delay
from edge.clock import Clock
from edge.heartbeat import HeartbeatLoop, heartbeat_interval_or_none
from edge.http_body import BodyError, read_limited
from edge.outbox import Outbox, OutboxError, OutboxFullError, OutboxStats, Peeked
from edge.uplink_replay import REPLAYED_ALARM, refill
from protocols.agent import installed_version, user_agent
from protocols.batch import (
    CONTENT_TYPE,
    MAX_RECORDS_PER_BATCH,
    BatchAck,
    BatchError,
    OutboxReport,
)

log = logging.getLogger(__name__)

PositiveDelta = Annotated[timedelta, Field(gt=timedelta(0))]
_USER_AGENT = user_agent(installed_version())
"""Tells the cloud which agent version sends (shown per gateway on its admin pages)."""
_BATCH_FIELDS = {"schema_version", "gateway_id", "boot_id", "sent_at"}


class UplinkError(RuntimeError):
    """The uplink could not deliver a batch."""


class CloudRefusedError(UplinkError):
    """The cloud refused a batch with a 4xx that retrying unchanged will not fix."""


class UplinkConfig(BaseModel):
    """Where and how batches go. ``token`` is the gateway token issued by the cloud."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cloud_url: HttpUrl
    """``https://``; plain ``http://`` only with ``allow_insecure_http`` (a LAN test rig)."""
    allow_insecure_http: bool = False
    """Sends the gateway token and the records unencrypted: for a lab or test network only."""
    token: SecretStr
    max_batch_records: Annotated[int, Field(ge=1, le=MAX_RECORDS_PER_BATCH)] = 5000
    max_batch_bytes: Annotated[int, Field(ge=1024, le=48 * 1024 * 1024)] = 4 * 1024 * 1024
    """Uncompressed JSON of the records; the cloud's default limit after inflation is 64 MiB."""
    linger: PositiveDelta = timedelta(seconds=1)
    """How long the oldest record may wait for a batch to fill."""
    request_timeout: PositiveDelta = timedelta(seconds=30)
    backoff_initial: PositiveDelta = timedelta(seconds=1)
    backoff_max: PositiveDelta = timedelta(minutes=5)
    retry_after_max: PositiveDelta = timedelta(hours=1)
    """A cloud asking for more than this is waited for this long only."""
    gzip_level: Annotated[int, Field(ge=1, le=9)] = 5
    max_response_bytes: Annotated[int, Field(ge=1024, le=64 * 1024**2)] = 1024**2
    """An answer larger than this, on the wire or inflated, is a failed send."""
    heartbeat_interval: timedelta | None = timedelta(seconds=60)
    """After this long without sending anything to the cloud, a heartbeat is sent
    (``edge.heartbeat``), so an idle gateway is not taken for offline. Whole seconds from 10 s
    to 1 h; 0 or null: no heartbeats."""

    _heartbeat = field_validator("heartbeat_interval")(heartbeat_interval_or_none)

    @model_validator(mode="after")
    def _https(self) -> UplinkConfig:
        if self.cloud_url.scheme != "https" and not self.allow_insecure_http:
            raise ValueError(
                f"cloud_url must be https:// (got {self.cloud_url.scheme}://); the token and "
                "the records would travel in clear text. Set allow_insecure_http: true only "
                "for a lab or test network"
            )
        return self


@dataclass
class UplinkStatus:
    """What the uplink knows about its link; read by metrics, health and local alarms."""

    last_success: datetime | None = None
    last_attempt: datetime | None = None
    failing_since: float | None = None
    """Monotonic time of the first failure of the current run of failures."""
    consecutive_failures: int = 0
    last_error: str | None = None
    batches_ok: int = 0
    records_acked: int = 0
    dead_lettered: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt: what happened, and how long to wait before the next one."""

    kind: str
    delay: float = 0.0


def build_body(
    gateway_id: str, peeked: Peeked, sent_at: datetime, outbox: OutboxReport | None = None
) -> bytes:
    """The batch JSON, assembled from the records' stored canonical JSON.

    >>> from uuid import UUID
    >>> from edge.outbox import StoredRecord
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> p = Peeked(UUID(int=1), (StoredRecord(7, '{"kind":"x"}', t),))
    >>> build_body("gw-1", p, t)[:40]
    b'{"schema_version":1,"gateway_id":"gw-1",'
    """
    report = "" if outbox is None else f'"outbox":{outbox.model_dump_json()},'
    head = (
        f'{{"schema_version":1,"gateway_id":{json.dumps(gateway_id)},'
        f'"boot_id":"{peeked.boot_id}","sent_at":"{sent_at.isoformat()}",{report}"records":['
    )
    items = ",".join(f'{{"seq":{r.seq},"record":{r.payload}}}' for r in peeked.records)
    return (head + items + "]}").encode()


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delta-seconds or HTTP-date), if any.

    >>> retry_after("120", datetime(2026, 1, 1, tzinfo=UTC))
    120.0
    >>> retry_after("Thu, 01 Jan 2026 00:00:30 GMT", datetime(2026, 1, 1, tzinfo=UTC))
    30.0
    >>> retry_after("soon", datetime(2026, 1, 1, tzinfo=UTC)) is None
    True
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def outbox_report(stats: OutboxStats, now: datetime) -> OutboxReport:
    """The outbox depth a batch reports: records waiting (the batch's own included) and the age
    of the oldest, on this gateway's clock.

    >>> from uuid import UUID
    >>> t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    >>> s = OutboxStats(UUID(int=1), 42, 4200, 100, 10**6, 42, t - timedelta(minutes=3), 0.42,
    ...                 None, False, False)
    >>> outbox_report(s, t)
    OutboxReport(pending=42, oldest_age=datetime.timedelta(seconds=180))
    """
    oldest = stats.oldest_appended_at
    age = None if oldest is None else max(timedelta(0), now - oldest)
    return OutboxReport(pending=stats.records, oldest_age=age)


def only_outbox_refused(error: BatchError) -> bool:
    """Whether a 422 names the batch's ``outbox`` report and nothing else (an older cloud).

    >>> only_outbox_refused(BatchError(error="x", detail=[{"loc": ["outbox"]}]))
    True
    >>> only_outbox_refused(BatchError(error="x", detail=[{"loc": ["records", 0]}]))
    False
    """
    if not isinstance(error.detail, list) or not error.detail:
        return False
    locs = [item.get("loc") for item in error.detail]
    return all(isinstance(loc, list) and loc[:1] == ["outbox"] for loc in locs)


def refused_positions(error: BatchError) -> tuple[set[int], bool]:
    """Record positions a 422 names, and whether it names batch-level fields.

    >>> e = BatchError(error="x", detail=[{"loc": ["records", 2, "record", "reading", "value"]}])
    >>> refused_positions(e)
    ({2}, False)
    """
    positions: set[int] = set()
    batch_level = False
    if not isinstance(error.detail, list):
        return positions, batch_level
    for item in error.detail:
        loc = item.get("loc")
        if not isinstance(loc, list) or not loc:
            continue
        if loc[0] == "records" and len(loc) > 1 and isinstance(loc[1], int):
            positions.add(loc[1])
        elif loc[0] in _BATCH_FIELDS:
            batch_level = True
    return positions, batch_level


class Uplink:
    """Runs the send loop; ``send_once`` is one attempt, ``run`` loops until cancelled."""

    def __init__(
        self,
        gateway_id: str,
        outbox: Outbox,
        client: httpx.AsyncClient,
        config: UplinkConfig,
        clock: Clock,
        *,
        alarms: AlarmSink | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._gateway_id = gateway_id
        self._outbox = outbox
        self._client = client
        self._config = config
        self._clock = clock
        self._alarms = alarms or NoAlarms()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._url = str(config.cloud_url).rstrip("/") + "/v1/batches"
        self._limit = config.max_batch_records
        self._refused_seqs: set[int] = set()
        self._stuck_alarm = False
        self._refilling_through = 0
        """While a restored cloud is refilled: the last record resent (its alarm is cleared
        once the cloud has it)."""
        self._report_outbox = True
        """Cleared when the cloud refuses the ``outbox`` report (a cloud older than it)."""
        self._first_seen: tuple[int, float] | None = None
        """(oldest sequence number waiting, monotonic time the uplink first saw it)."""
        start = outbox.stats()
        self._could_be_stored: tuple[UUID, int] = (start.boot_id, start.last_seq)
        """(boot, the highest sequence number of that boot the cloud can legitimately have):
        what the file had numbered when this uplink started (an earlier run may have sent it)
        or what this uplink has sent since. Records numbered after the start and not yet sent
        cannot be in the cloud: a ``stored_through`` above this mark is a rolled-back outbox
        even once new appends have pushed ``last_seq`` past the cloud's mark."""
        self.status = UplinkStatus()
        self._last_sent = clock.monotonic()
        """Monotonic time a request last went to the cloud (the heartbeat waits for a pause)."""
        self.heartbeat = self._heartbeat_loop()
        """None when heartbeats are off (``heartbeat_interval`` 0 or null)."""

    def _heartbeat_loop(self) -> HeartbeatLoop | None:
        interval = self._config.heartbeat_interval
        if interval is None:
            return None
        return HeartbeatLoop(
            self._client, str(self._config.cloud_url), self._config.token, interval,
            self._clock, last_sent=lambda: self._last_sent,
            timeout=self._config.request_timeout,
            max_response_bytes=self._config.max_response_bytes, user_agent=_USER_AGENT,
        )  # fmt: skip

    def unreachable_for(self) -> timedelta:
        """How long the cloud has been failing us (zero while batches go through)."""
        if self.status.failing_since is None:
            return timedelta(0)
        return timedelta(seconds=self._clock.monotonic() - self.status.failing_since)

    async def run(self) -> None:
        """Sends batches as they come; the heartbeat, if on, runs beside it and ends with it (an
        outbox error still escapes as itself, not wrapped in an exception group)."""
        beside = self.heartbeat
        task = None if beside is None else asyncio.create_task(beside.run(), name="heartbeat")
        try:
            await self._send_loop()
        finally:
            if task is not None:
                task.cancel()
                await asyncio.wait([task])

    async def _send_loop(self) -> None:
        while True:
            await self._wait_for_batch()
            outcome = await self.send_once()
            if outcome.delay > 0:
                await self._clock.sleep(outcome.delay)

    async def drain(self, deadline: float) -> bool:
        """Sends until the outbox is empty or monotonic ``deadline`` passes; True if emptied."""
        while self._outbox.stats().records and self._clock.monotonic() < deadline:
            outcome = await self.send_once()
            if self._clock.monotonic() + outcome.delay >= deadline:
                break
            await self._clock.sleep(outcome.delay)
        return self._outbox.stats().records == 0

    async def _wait_for_batch(self) -> None:
        """Waits for a record, then up to ``linger`` (monotonic) for the batch to fill."""
        await self._outbox.wait_for_records()
        while True:
            stats = self._outbox.stats()
            if stats.records >= self._limit or stats.bytes >= self._config.max_batch_bytes:
                return
            if not stats.records:
                return
            oldest = stats.last_seq - stats.records + 1
            now = self._clock.monotonic()
            if self._first_seen is None or self._first_seen[0] != oldest:
                self._first_seen = (oldest, now)
            waited = now - self._first_seen[1]
            remaining = self._config.linger.total_seconds() - waited
            if remaining <= 0:
                return
            await self._clock.sleep(min(remaining, 0.05))

    async def send_once(self) -> Outcome:
        """Sends the oldest batch once and handles the answer.

        Every failure of the exchange is a failed send with backoff; only outbox errors (the
        agent's to handle) propagate.
        """
        peeked = await self._outbox.peek(self._limit, self._config.max_batch_bytes)
        if not peeked.records:
            return Outcome("empty")
        self._sending(peeked)
        now = self._clock.now()
        self.status.last_attempt = now
        report = outbox_report(self._outbox.stats(), now) if self._report_outbox else None
        body = build_body(self._gateway_id, peeked, now, report)
        compressed = await asyncio.to_thread(gzip.compress, body, self._config.gzip_level)
        self._last_sent = self._clock.monotonic()
        try:
            async with asyncio.timeout(self._config.request_timeout.total_seconds()):
                code, headers, content = await self._post(compressed)
        except (TimeoutError, httpx.HTTPError, BodyError) as err:
            return await self._failed_exchange(err)
        except Exception as err:  # a failure we did not foresee must not end the uplink
            log.exception("uplink: unexpected failure of the exchange")
            return await self._transient("error", f"unexpected: {err!r}", None)
        try:
            return await self._answer(peeked, code, headers, content)
        except OutboxFullError as err:  # a full disk refused the ack: the cloud keeps them
            return await self._transient("outbox_disk_full", f"ack not written: {err}", None)
        except OutboxError:
            raise
        except Exception as err:  # an answer we did not foresee must not end the uplink
            log.exception("uplink: unexpected failure handling an answer (%d)", code)
            return await self._transient("error", f"unexpected: {err!r}", None)

    def _sending(self, peeked: Peeked) -> None:
        """Raises the mark of what the cloud may have stored to the batch about to be sent."""
        boot, through = self._could_be_stored
        if boot != peeked.boot_id:  # rebased: nothing of the new boot was sent before
            boot, through = peeked.boot_id, 0
        self._could_be_stored = (boot, max(through, peeked.records[-1].seq))

    async def _failed_exchange(self, err: Exception) -> Outcome:
        if isinstance(err, TimeoutError | httpx.TimeoutException):
            return await self._transient("timeout", f"timeout: {err!r}", None)
        if isinstance(err, httpx.TransportError):
            return await self._transient("unreachable", f"connection failed: {err!r}", None)
        if isinstance(err, BodyError):
            return await self._transient("unreadable", f"unreadable answer: {err}", None)
        return await self._transient("http_error", f"HTTP failure: {err!r}", None)

    async def _post(self, compressed: bytes) -> tuple[int, httpx.Headers, bytes]:
        headers = {
            "Authorization": f"Bearer {self._config.token.get_secret_value()}",
            "Content-Type": CONTENT_TYPE,
            "Content-Encoding": "gzip",
            "Accept-Encoding": "gzip",
            "User-Agent": _USER_AGENT,
        }
        timeout = self._config.request_timeout.total_seconds()
        async with self._client.stream(
            "POST", self._url, content=compressed, headers=headers, timeout=timeout
        ) as response:
            content = await read_limited(response, self._config.max_response_bytes)
            return response.status_code, response.headers, content

    async def _answer(
        self, peeked: Peeked, code: int, headers: httpx.Headers, content: bytes
    ) -> Outcome:
        if code == 200:
            return await self._acknowledged(peeked, content)
        asked = retry_after(headers.get("Retry-After"), self._clock.now())
        if code == 429 or code >= 500:
            return await self._transient(f"http_{code}", f"cloud answered {code}", asked)
        error = _batch_error(code, content)
        if code == 413 and len(peeked.records) > 1:
            self._limit = max(1, len(peeked.records) // 2)
            return self._count(Outcome("too_large"))
        if code == 422:
            return await self._refused(peeked, error, code)
        if code == 409:
            return await self._behind(peeked, error)
        return await self._stuck(f"http_{code}", f"cloud refused the batch ({code}): {error.error}")

    async def _acknowledged(self, peeked: Peeked, content: bytes) -> Outcome:
        try:
            ack = BatchAck.model_validate_json(content)
        except ValidationError as err:
            return await self._transient("bad_ack", f"unreadable acknowledgement: {err}", None)
        if ack.gateway_id != self._gateway_id or ack.boot_id != peeked.boot_id:
            return await self._stuck("wrong_ack", f"acknowledgement for another stream: {ack}")
        first, last = peeked.records[0].seq, peeked.records[-1].seq
        if ack.stored_through < first - 1:
            return await self._stuck(
                "regressed", f"cloud stored through {ack.stored_through}, below {first - 1}"
            )
        boot, could_be_stored = self._could_be_stored
        if boot == peeked.boot_id and ack.stored_through > could_be_stored:
            return await self._rolled_back(peeked, ack.stored_through, could_be_stored)
        through = min(ack.stored_through, last)
        deleted = await self._outbox.ack(peeked.boot_id, through)
        self._success(deleted)
        if self._stuck_alarm:
            self._stuck_alarm = False
            await self._alarms.clear_alarm("uplink.refused", "the cloud accepts batches again")
        if self._refilling_through and through >= self._refilling_through:
            self._refilling_through = 0
            await self._alarms.clear_alarm(REPLAYED_ALARM, "the restored cloud is refilled")
        if self._limit < self._config.max_batch_records:
            self._limit = min(self._config.max_batch_records, self._limit * 2)
        return self._count(Outcome("ok" if through == last else "partial"))

    async def _rolled_back(self, peeked: Peeked, stored_through: int, known: int) -> Outcome:
        """The cloud stored more of this boot than the outbox had numbered at start or sent
        since: the file was rolled back (and may have numbered new records again). Renumber
        everything under a new boot and resend."""
        new = await self._outbox.rebase()
        self._refused_seqs.clear()
        self._first_seen = None
        message = (
            f"the outbox was rolled back: the cloud stored boot {peeked.boot_id} through "
            f"{stored_through}, but the outbox had numbered (at start) or sent only through "
            f"{known}. Its "
            f"{self._outbox.stats().records} record(s) were renumbered under boot {new} and "
            "are sent again (some may be stored twice; none is taken for already stored)"
        )
        log.error("uplink: %s", message)
        await self._alarms.raise_alarm("outbox/rolled_back", message)
        return self._count(Outcome("rebased"))

    async def _behind(self, peeked: Peeked, error: BatchError) -> Outcome:
        """409: a restored cloud is refilled from the replay window (``edge.uplink_replay``)."""
        done = await refill(self._outbox, self._alarms, peeked, error)
        if done is None:
            return await self._stuck("http_409", f"cloud refused the batch (409): {error.error}")
        self._refused_seqs.clear()
        self._first_seen = None
        self._refilling_through = done.resent_through
        return self._count(Outcome(done.kind))

    async def _refused(self, peeked: Peeked, error: BatchError, code: int) -> Outcome:
        if self._report_outbox and only_outbox_refused(error):
            self._report_outbox = False
            log.warning("uplink: the cloud does not take the outbox report; sending without it")
            return self._count(Outcome("outbox_report_refused"))
        positions, batch_level = refused_positions(error)
        if batch_level:
            return await self._stuck(f"http_{code}", f"cloud refused the batch: {error.error}")
        if not positions:
            if len(peeked.records) > 1:
                # No record named: halve until the culprit is alone in its batch.
                self._limit = max(1, len(peeked.records) // 2)
                return self._count(Outcome("bisect"))
            positions = {0}
        seqs = [peeked.records[i].seq for i in sorted(positions) if i < len(peeked.records)]
        if not seqs or any(seq in self._refused_seqs for seq in seqs):
            return await self._stuck(f"http_{code}", f"cloud refused a dead letter: {error}")
        reason = _reason(error, code)
        for seq in seqs:
            await self._outbox.dead_letter(peeked.boot_id, seq, reason)
            self._refused_seqs.add(seq)
        self.status.dead_lettered += len(seqs)
        message = f"cloud refused record(s) {seqs}, kept as dead letters: {reason}"
        log.error(message)
        await self._alarms.raise_alarm("uplink.dead_letter", message)
        return self._count(Outcome("dead_lettered"))

    async def _transient(self, kind: str, message: str, asked: float | None) -> Outcome:
        self._failure(message)
        delay = self._backoff()
        if asked is not None:
            delay = max(delay, min(asked, self._config.retry_after_max.total_seconds()))
        log.warning("uplink: %s; retrying in %.1f s", message, delay)
        return self._count(Outcome(kind, delay))

    async def _stuck(self, kind: str, message: str) -> Outcome:
        self._failure(message)
        log.error("uplink: %s; nothing is deleted, retrying later", message)
        self._stuck_alarm = True
        await self._alarms.raise_alarm("uplink.refused", message)
        return self._count(Outcome(kind, self._config.backoff_max.total_seconds()))

    def _backoff(self) -> float:
        return backoff_delay(
            self.status.consecutive_failures - 1,
            self._config.backoff_initial,
            self._config.backoff_max,
            self._rng,
        )

    def _failure(self, message: str) -> None:
        self.status.consecutive_failures += 1
        self.status.last_error = message
        if self.status.failing_since is None:
            self.status.failing_since = self._clock.monotonic()

    def _success(self, deleted: int) -> None:
        if self.status.failing_since is not None:
            log.info("uplink: cloud reachable again after %s", self.unreachable_for())
        self.status.failing_since = None
        self.status.consecutive_failures = 0
        self.status.last_error = None
        self.status.last_success = self._clock.now()
        self.status.batches_ok += 1
        self.status.records_acked += deleted

    def _count(self, outcome: Outcome) -> Outcome:
        self.status.outcomes[outcome.kind] = self.status.outcomes.get(outcome.kind, 0) + 1
        return outcome


def _batch_error(code: int, content: bytes) -> BatchError:
    try:
        return BatchError.model_validate_json(content)
    except ValidationError:
        text = content[:500].decode("utf-8", errors="replace")
        return BatchError(error=text or f"HTTP {code}")


def _reason(error: BatchError, code: int) -> str:
    detail = json.dumps(error.detail, default=str) if error.detail else ""
    return f"HTTP {code} {error.error} {detail}".strip()[:1500]
