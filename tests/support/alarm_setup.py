"""Alarm configuration for tests on the cold-chain test site, written through the room's store."""

from __future__ import annotations

from datetime import timedelta

from cloud.alarms.channels import AppriseNotifier
from cloud.alarms.config_store import put_channel, put_doc
from cloud.alarms.policy import Contact, Group, Policy, Step, Target
from cloud.alarms.settings import AlarmSettings
from cloud.alarms.worker import AlarmWorker
from tests.support.coldchain_seed import SITE, Site

FAST = AlarmSettings(
    poll_interval=timedelta(milliseconds=200),
    send_timeout=timedelta(seconds=5),
    lease=timedelta(seconds=30),
    max_attempts=3,
    backoff_initial=timedelta(seconds=10),
    backoff_max=timedelta(seconds=20),
    channel_failure_threshold=2,
    public_url="https://coldtrace.example.org",
)


async def add_channel(site: Site, name: str, url: str, *, site_id: str = SITE) -> None:
    async with site.pool.connection() as conn, conn.transaction():
        await put_channel(conn, site_id, name, url=url, enabled=True, actor="admin")


async def add_contact(site: Site, name: str, *channels: str) -> None:
    async with site.pool.connection() as conn, conn.transaction():
        spec = Contact(display_name=name.title(), channels=list(channels))
        await put_doc(conn, SITE, "contact", name, spec, actor="admin")


async def add_group(site: Site, name: str, *members: str) -> None:
    async with site.pool.connection() as conn, conn.transaction():
        await put_doc(conn, SITE, "group", name, Group(members=list(members)), actor="admin")


async def add_policy(site: Site, name: str, policy: Policy) -> None:
    async with site.pool.connection() as conn, conn.transaction():
        await put_doc(conn, SITE, "policy", name, policy, actor="admin")


def steps(*targets: list[Target], wait: timedelta = timedelta(minutes=10)) -> list[Step]:
    return [Step(notify=t, wait=wait) for t in targets]


def contact(name: str) -> Target:
    return Target(type="contact", name=name)


def channel(name: str) -> Target:
    return Target(type="channel", name=name)


def worker(site: Site, settings: AlarmSettings = FAST) -> AlarmWorker:
    return AlarmWorker(site.pool, AppriseNotifier(settings.send_timeout), settings)
