"""Sending a report through an alarm channel (Apprise): attached on e-mail, linked elsewhere.

The alarm worker's ``Notifier`` sends text only; a report needs its file, so this sends with
Apprise's in-memory attachment. Channels that cannot carry a file (SMS, push, chat webhooks)
get the text with the link to the archived report instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import apprise
from apprise.attachment.memory import AttachMemory

from cloud.alarms.channels import SendOutcome, scrub

MAIL_SCHEMES = frozenset({"mailto", "mailtos"})


@dataclass(frozen=True)
class Outgoing:
    title: str
    body: str
    filename: str
    media_type: str
    content: bytes


def carries_files(url: str) -> bool:
    """True for e-mail channels.

    >>> carries_files("mailtos://a:b@smtp.example.org?to=qa@example.org"), carries_files("ntfy://x")
    (True, False)
    """
    return urlsplit(url).scheme.lower() in MAIL_SCHEMES


async def send_report(url: str, message: Outgoing, *, send_timeout: timedelta) -> SendOutcome:
    """Sends once; never raises for a delivery failure (the outcome says what went wrong)."""
    sender = apprise.Apprise()
    if not sender.add(url):
        return SendOutcome(False, "the channel URL is not accepted by Apprise")
    attach = None
    if carries_files(url):
        attach = apprise.AppriseAttachment()
        attach.add(AttachMemory(content=message.content, name=message.filename,  # type: ignore[no-untyped-call]
                                mimetype=message.media_type.split(";")[0]))  # fmt: skip
    result = await sender.async_notify(
        body=message.body, title=message.title, body_format=apprise.NotifyFormat.TEXT,
        attach=attach, timeout=max(send_timeout.total_seconds(), 0.1),
    )  # fmt: skip
    if result:
        return SendOutcome(True)
    problems = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
    return SendOutcome(False, scrub(url, "; ".join(problems) or "not sent")[:500])
