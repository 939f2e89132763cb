"""Notification transports through Apprise: one URL per channel (email, SMS, voice, push, chat,
webhooks), checked when configured, masked when shown, sent after commit.

Apprise knows each service's secrets and masks them (``url(privacy=True)``). Generic webhooks
(``json://``, ``form://``, ``xml://``) may carry a token in their path or headers in their query,
which Apprise does not treat as secret, so only their scheme and host are shown. As a last guard,
no credential or long query value of the original URL may appear in what is shown.

>>> inspect_url("mailtos://alarms:s3cret-pw@smtp.example.org?to=qa@example.org").service
'E-Mail'
>>> "s3cret-pw" in inspect_url("mailtos://alarms:s3cret-pw@smtp.example.org?to=qa@example.org").masked
False
>>> inspect_url("json://hooks.example.org/t/9f8e7d6c5b4a?+Authorization=Bearer%20abc").masked
'json://hooks.example.org/…'
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from cloud.alarms import ConfigError

_GENERIC = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
_MASK = "****"


@dataclass(frozen=True)
class ChannelInfo:
    service: str
    """Apprise's name of the service ("E-Mail", "Twilio", "ntfy", "JSON", …)."""
    masked: str
    """The URL with its secrets hidden: safe to show to an admin, log or return."""


def inspect_url(url: str) -> ChannelInfo:
    """The service and masked form of ``url``; ``ConfigError`` when Apprise cannot use it."""
    if len(url) > 4000 or any(ord(c) < 32 for c in url):
        raise ConfigError("a channel URL must be one line of at most 4000 characters")
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise ConfigError(
            "not a notification URL Apprise can use (see docs/alarms.md for examples)"
        )
    scheme = urlsplit(url).scheme.lower()
    if scheme in _GENERIC:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        shown = f"{scheme}://{host}{port}/…"
    else:
        shown = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
    return ChannelInfo(service=str(plugin.service_name), masked=scrub(url, shown))


def scrub(url: str, shown: str) -> str:
    """Removes from ``shown`` any credential or long query value that ``url`` holds.

    >>> scrub("json://u:hunter22@h/x", "failed posting to json://u:hunter22@h/x")
    'failed posting to json://u:****@h/x'
    """
    parts = urlsplit(url)
    secrets = [parts.password or ""]
    secrets += [value for _, value in parse_qsl(parts.query) if len(value) >= 8]
    secrets += [seg for seg in re.split(r"[/]", unquote(parts.path)) if len(seg) >= 16]
    for secret in sorted(set(filter(None, secrets)), key=len, reverse=True):
        if "@" in secret and "." in secret:
            continue  # an e-mail address names a recipient; it is not a secret
        for form in {secret, unquote(secret)}:
            if len(form) >= 4:
                shown = shown.replace(form, _MASK)
    return shown


_KEEP = frozenset({"mqtt", "mqtts"})
"""Schemes whose Apprise object (and so its connection) is kept between messages: a fresh MQTT
client per message races its own handshake. Others get a fresh object per message, since Apprise
throttles repeated sends through one object (e-mail: seconds apart)."""


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    error: str | None = None


class Notifier(Protocol):
    """Sends one message to one channel URL; never raises for a delivery failure."""

    async def send(self, url: str, title: str, body: str) -> SendOutcome: ...


class AppriseNotifier:
    """The production notifier: Apprise, with its own per-service retries turned off (the
    outbox retries, with backoff, and logs each attempt). ``send_timeout`` bounds one send."""

    def __init__(self, send_timeout: timedelta) -> None:
        self._send_timeout = send_timeout
        self._kept: dict[str, tuple[apprise.Apprise, asyncio.Lock]] = {}

    async def send(self, url: str, title: str, body: str) -> SendOutcome:
        kept = self._kept.get(url)
        if kept is None:
            sender = apprise.Apprise()
            if not sender.add(url):
                return SendOutcome(False, "the channel URL is no longer accepted by Apprise")
            kept = (sender, asyncio.Lock())
            if urlsplit(url).scheme.lower() in _KEEP:
                self._kept[url] = kept
        sender, lock = kept
        async with lock:  # one message at a time through a kept connection
            result = await sender.async_notify(
                body=body,
                title=title,
                body_format=apprise.NotifyFormat.TEXT,
                timeout=max(self._send_timeout.total_seconds(), 0.1),
            )
        if result:
            return SendOutcome(True)
        problems = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
        reason = "; ".join(problems) or f"Apprise status {result.status.name}"
        return SendOutcome(False, scrub(url, reason)[:500])
