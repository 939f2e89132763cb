"""Local notifications: while the cloud is unreachable, the gateway's own alarms reach people
through channels on the site network, and people are told when the cloud is back.

Channels are Apprise URLs configured on the gateway: e-mail through a local relay
(``mailto://relay.site.lan:25?to=qa@example.org&from=gateway@example.org``), a siren or alarm
panel on the site broker (``mqtt://broker.site.lan:1883/coldtrace/siren``), a webhook on the LAN
(``json://10.0.0.5:8080/alarm``). ``LocalAlarms`` calls :meth:`LocalNotifier.on_signal` for every
alarm it raises or clears (the hook); :meth:`LocalNotifier.run` sends them, retrying each channel
with backoff, and once the cloud is caught up again (less than ``cloud_back_after`` behind)
sends one "cloud reachable again" message naming the alarms raised meanwhile, since from then on
the cloud's own alarms (``cloud/alarms``) take over. Alarms the gateway raises while the cloud
is reachable (a door guard's block, an outbox filling on a slow link) are sent too, and their
text says the cloud is reachable; only alarms raised while it was behind are named in the
"cloud reachable again" message.

The pending notices are bounded (``max_pending`` alarm keys) with the policy *coalesce per key,
then drop the oldest*: a key keeps only its latest state, and a notice dropped for room is
counted in ``dropped`` and logged. Nothing here touches records: the alarms' ``DeviceStatus``
records still go through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Protocol
from urllib.parse import urlsplit

import apprise
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.backoff import backoff_delay
from edge.clock import Clock

log = logging.getLogger(__name__)

PositiveDelta = Annotated[timedelta, Field(gt=timedelta(0))]


class NotifyConfig(BaseModel):
    """Where the gateway's local alarms are sent while the cloud cannot do it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: tuple[str, ...] = ()
    """Apprise URLs (e-mail relay, MQTT siren topic, LAN webhook…); none: log and MQTT only."""
    send_timeout: PositiveDelta = timedelta(seconds=10)
    retry_initial: PositiveDelta = timedelta(seconds=5)
    retry_max: PositiveDelta = timedelta(minutes=2)
    max_pending: Annotated[int, Field(ge=1, le=10_000)] = 200
    cloud_back_after: PositiveDelta = timedelta(minutes=2)
    """The cloud counts as back once it is less than this far behind (``edge.lag``)."""
    poll_interval: PositiveDelta = timedelta(seconds=5)

    @field_validator("urls")
    @classmethod
    def _usable(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for i, url in enumerate(urls):
            if apprise.Apprise.instantiate(url) is None:
                raise ValueError(f"notify url #{i + 1} is not an Apprise URL this gateway can use")
        return urls


class Sender(Protocol):
    async def send(self, url: str, title: str, body: str) -> str | None:
        """None when the channel accepted the message, else why not."""


_KEEP = frozenset({"mqtt", "mqtts"})
"""Schemes whose Apprise object is kept between sends: MQTT keeps its connection (a fresh
client per message raced its own handshake). Others get a fresh object each time, since Apprise
throttles repeated sends through one object (e-mail: seconds apart)."""


class AppriseSender:
    """Sends one message to one URL at a time (sends are sequential)."""

    def __init__(self, timeout: timedelta) -> None:
        self._timeout = timeout
        self._senders: dict[str, apprise.Apprise] = {}

    async def send(self, url: str, title: str, body: str) -> str | None:
        sender = self._senders.get(url)
        if sender is None:
            sender = apprise.Apprise()
            if not sender.add(url):
                return "not an Apprise URL"
            if urlsplit(url).scheme.lower() in _KEEP:
                self._senders[url] = sender
        result = await sender.async_notify(
            body=body, title=title, body_format=apprise.NotifyFormat.TEXT,
            timeout=self._timeout.total_seconds(),
        )  # fmt: skip
        if result:
            return None
        problems = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
        return "; ".join(problems)[:300] or f"Apprise status {result.status.name}"


@dataclass
class _Notice:
    title: str
    body: str
    to_send: set[int]
    """Indexes of the URLs that have not accepted it yet."""
    attempts: int = 0
    due: float = 0.0


@dataclass
class _Outage:
    raised: dict[str, str] = field(default_factory=dict)


class LocalNotifier:
    """Queues notices from the alarm hook and sends them to every configured channel."""

    def __init__(
        self,
        gateway_id: str,
        config: NotifyConfig,
        clock: Clock,
        cloud_behind: Callable[[], timedelta],
        sender: Sender | None = None,
    ) -> None:
        self._gateway = gateway_id
        self._config = config
        self._clock = clock
        self._cloud_behind = cloud_behind
        self._sender = sender or AppriseSender(config.send_timeout)
        self._pending: dict[str, _Notice] = {}
        self._outage = _Outage()
        self._wake = asyncio.Event()
        self._rng = random.Random()  # noqa: S311  (jitter, not secrecy)
        self.dropped = 0
        self.sent = 0

    @property
    def pending(self) -> list[str]:
        """Keys of the notices not yet accepted by every channel, oldest first."""
        return list(self._pending)

    def on_signal(self, key: str, message: str, raised: bool, at: datetime) -> None:
        """The hook ``LocalAlarms`` calls when an alarm is raised or cleared.

        The message says what is true of the cloud at that moment: a door or outbox alarm can
        be raised while the cloud is reachable, and only alarms raised while it was behind are
        named again in the "cloud reachable again" message.
        """
        state = "LOCAL ALARM" if raised else "cleared"
        title = f"[{state}] gateway {self._gateway}: {key}"
        behind = self._cloud_behind()
        offline = behind >= self._config.cloud_back_after
        body = f"{message}\nTime: {at.isoformat()}\nGateway: {self._gateway}\n" + cloud_words(
            raised=raised, behind=behind, offline=offline
        )
        if raised and offline:
            self._outage.raised[key] = message
        self._queue(f"alarm/{key}", title, body)

    def _queue(self, key: str, title: str, body: str) -> None:
        if not self._config.urls:
            return
        self._pending.pop(key, None)  # coalesce: only the latest state of a key is sent
        if len(self._pending) >= self._config.max_pending:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            self.dropped += 1
            log.warning("local notice %s dropped: %d pending is the bound", oldest,
                        self._config.max_pending)  # fmt: skip
        self._pending[key] = _Notice(title, body, set(range(len(self._config.urls))))
        self._wake.set()

    def _check_cloud(self) -> None:
        if not self._outage.raised:
            return
        if self._cloud_behind() >= self._config.cloud_back_after:
            return
        names = "\n".join(f"  - {k}: {m}" for k, m in self._outage.raised.items())
        self._outage = _Outage()
        self._queue(
            "cloud/back",
            f"[cloud back] gateway {self._gateway}: the cloud is reachable again",
            "The cloud has the gateway's data again; its alarms and escalation take over.\n"
            f"Local alarms raised while it was unreachable:\n{names}",
        )

    async def send_due(self) -> int:
        """Sends every due notice once to each channel that has not accepted it; returns the
        number of channel deliveries made."""
        self._check_cloud()
        now = self._clock.monotonic()
        done = 0
        for key, notice in list(self._pending.items()):
            if notice.due > now:
                continue
            for index in sorted(notice.to_send):
                error = await self._sender.send(self._config.urls[index], notice.title, notice.body)
                if error is None:
                    notice.to_send.discard(index)
                    done += 1
                else:
                    log.warning("local notice %s on channel #%d failed: %s", key, index + 1, error)
            if not notice.to_send:
                self._pending.pop(key, None)
                continue
            notice.attempts += 1
            delay = backoff_delay(
                notice.attempts - 1, self._config.retry_initial, self._config.retry_max, self._rng
            )
            notice.due = now + delay
        self.sent += done
        return done

    async def run(self) -> None:
        """Sends until cancelled (the agent's task group owns it)."""
        while True:
            await self.send_due()
            await _wait(self._wake, self._config.poll_interval)
            self._wake.clear()


def cloud_words(*, raised: bool, behind: timedelta, offline: bool) -> str:
    """The line of a local notice that says where the cloud stands.

    >>> print(cloud_words(raised=True, behind=timedelta(minutes=42), offline=True)[:64])
    The cloud has not acknowledged the gateway's data for 42 min: th
    >>> print(cloud_words(raised=True, behind=timedelta(seconds=3), offline=False)[:56])
    The cloud is reachable (its acknowledgements are 3 s beh
    >>> cloud_words(raised=False, behind=timedelta(0), offline=False)
    'Cleared at the gateway; the cloud is reachable.'
    """
    seconds = behind.total_seconds()
    ago = f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
    if not raised:
        where = f"has not acknowledged its data for {ago}" if offline else "is reachable"
        return f"Cleared at the gateway; the cloud {where}."
    if offline:
        return (
            f"The cloud has not acknowledged the gateway's data for {ago}: this alarm comes from"
            " the gateway itself, and a message follows when the cloud is reachable again."
        )
    return (
        f"The cloud is reachable (its acknowledgements are {ago} behind): this alarm is the"
        " gateway's own, sent from the site; the cloud receives it as the gateway's status."
    )


async def _wait(event: asyncio.Event, period: timedelta) -> None:
    try:
        await asyncio.wait_for(event.wait(), period.total_seconds())
    except TimeoutError:
        return
