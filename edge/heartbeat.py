"""The uplink's heartbeat: tells the cloud the gateway is alive when it has nothing else to send.

The cloud's alarm ``gateway_offline`` counts from the gateway's last contact, and an idle
gateway (a quiet dock door at night, no readings) sends no batch. When the uplink has sent
nothing to the cloud for ``heartbeat_interval`` (on the monotonic clock), this loop posts a
``protocols.heartbeat.Heartbeat`` to ``POST /v1/gateway/heartbeat``; the interval it carries
lets the cloud wait three of them before calling the gateway offline.

Best effort, beside the send loop and never in its way: it touches no outbox, raises no alarm
(the uplink's own failures do that), and a failed heartbeat is logged (a warning for the first
of a run of failures, then at debug level) and simply tried again one interval later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import httpx
from pydantic import SecretStr

from edge.clock import Clock
from edge.cloud_documents import post_json
from edge.http_body import BodyError
from protocols.heartbeat import (
    HEARTBEAT_PATH,
    MAX_INTERVAL_SECONDS,
    MIN_INTERVAL_SECONDS,
    Heartbeat,
)

log = logging.getLogger(__name__)


def heartbeat_interval_or_none(value: timedelta | None) -> timedelta | None:
    """The configured interval, None for no heartbeats (0 or null), refused when out of bounds.

    >>> heartbeat_interval_or_none(timedelta(0)) is None
    True
    >>> heartbeat_interval_or_none(timedelta(minutes=2))
    datetime.timedelta(seconds=120)
    >>> heartbeat_interval_or_none(timedelta(seconds=5))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: heartbeat_interval must be whole seconds from 10 s to 3600 s ...
    """
    if value is None or value == timedelta(0):
        return None
    seconds = value.total_seconds()
    if seconds != int(seconds) or not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
        raise ValueError(
            f"heartbeat_interval must be whole seconds from {MIN_INTERVAL_SECONDS} s to "
            f"{MAX_INTERVAL_SECONDS} s (or 0 / null for no heartbeats), got {value}"
        )
    return value


class HeartbeatLoop:
    """Posts a heartbeat whenever nothing was sent for ``interval``; ``run`` loops until
    cancelled, ``beat`` sends one."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        cloud_url: str,
        token: SecretStr,
        interval: timedelta,
        clock: Clock,
        *,
        last_sent: Callable[[], float],
        timeout: timedelta,
        max_response_bytes: int,
        user_agent: str,
    ) -> None:
        self._client = client
        self._url = cloud_url.rstrip("/") + HEARTBEAT_PATH
        self._headers = {
            "Authorization": f"Bearer {token.get_secret_value()}",
            "User-Agent": user_agent,
        }
        self._interval = interval
        self._clock = clock
        self._last_sent = last_sent
        """Monotonic time the uplink last sent something to the cloud."""
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._last_beat = clock.monotonic()
        self._failing = False
        self.sent = 0
        self.failed = 0

    def due_in(self) -> float:
        """Seconds until the next heartbeat: ``interval`` after the later of the uplink's last
        request and the last heartbeat (zero or less: due now)."""
        last = max(self._last_sent(), self._last_beat)
        return last + self._interval.total_seconds() - self._clock.monotonic()

    async def run(self) -> None:
        while True:
            wait = self.due_in()
            if wait > 0:
                await self._clock.sleep(wait)
                continue
            try:
                await self.beat()
            except Exception:  # a heartbeat must never end the uplink it runs beside
                self.failed += 1
                log.exception("heartbeat: unexpected failure")

    async def beat(self) -> bool:
        """Sends one heartbeat; True when the cloud took it (204)."""
        self._last_beat = self._clock.monotonic()
        body = Heartbeat(
            interval_seconds=int(self._interval.total_seconds()), sent_at=self._clock.now()
        )
        try:
            code = await post_json(
                self._client, self._url, self._headers, body.model_dump_json(),
                within=self._timeout.total_seconds(), limit=self._max_response_bytes,
            )  # fmt: skip
        except (TimeoutError, httpx.HTTPError, BodyError) as err:
            return self._failed(f"{type(err).__name__}: {err}")
        if code != 204:
            return self._failed(f"cloud answered {code}")
        if self._failing:
            log.info("heartbeat: the cloud takes heartbeats again")
        self._failing = False
        self.sent += 1
        return True

    def _failed(self, why: str) -> bool:
        self.failed += 1
        if self._failing:
            log.debug("heartbeat not taken: %s", why)
        else:
            log.warning("heartbeat not taken (tried again every %s): %s", self._interval, why)
        self._failing = True
        return False
