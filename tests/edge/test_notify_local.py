"""Local notifications while the cloud is unreachable: a local alarm reaches an e-mail relay, a
siren topic on the site broker and a LAN webhook (real SMTP, real Mosquitto, real HTTP), is
retried when a channel fails, and people are told when the cloud is back."""

from __future__ import annotations

import asyncio
import queue
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.alarms import LocalAlarmConfig, LocalAlarms, SensorLimits
from edge.clock import ManualClock
from edge.notify import LocalNotifier, NotifyConfig
from protocols.records import Reading
from tests.edge.conftest import T0
from tests.support.alarm_receivers import http_sink, smtp_sink

pytestmark = pytest.mark.integration

LIMITS = LocalAlarmConfig(
    cloud_unreachable_after=timedelta(minutes=5),
    on_delay=timedelta(minutes=2),
    sensors={"fridge-1/t": SensorLimits(low=2.0, high=8.0)},
)


def reading(minute: int, value: float) -> Reading:
    t = T0 + timedelta(minutes=minute)
    return Reading(sensor_id="fridge-1/t", time=t, value=value,
                   received_at=t + timedelta(seconds=1))  # fmt: skip


class Behind:
    def __init__(self) -> None:
        self.value = timedelta(hours=1)

    def __call__(self, *_: str) -> timedelta:
        return self.value


async def drain(notifier: LocalNotifier, clock: ManualClock) -> None:
    """Sends, letting retry delays pass, until every channel accepted every notice."""
    for _ in range(10):
        clock.advance(3)
        await notifier.send_due()
        if not notifier.pending:
            return
    raise AssertionError(f"still pending: {notifier.pending}")


def siren_listener(mqtt_url: str, topic: str) -> tuple[mqtt.Client, queue.Queue[bytes]]:
    got: queue.Queue[bytes] = queue.Queue()
    parts = urlsplit(mqtt_url)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: got.put(bytes(msg.payload))
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.subscribe(topic, qos=1)
    client.loop_start()
    return client, got


async def test_local_alarm_reaches_mail_siren_and_webhook_then_cloud_back(mqtt_url: str) -> None:
    broker = urlsplit(mqtt_url)
    topic = f"site/siren/{uuid.uuid4().hex[:8]}"
    client, siren = siren_listener(mqtt_url, topic)
    try:
        async with smtp_sink() as smtp, http_sink() as hook:
            smtp.refuse = True  # the relay is down at first: the mail is retried
            config = NotifyConfig(
                urls=(smtp.url("qa@example.org"),
                      f"mqtt://{broker.hostname}:{broker.port}/{topic}", hook.url("/alarm")),
                retry_initial=timedelta(seconds=1), retry_max=timedelta(seconds=2),
            )  # fmt: skip
            clock = ManualClock(T0)
            behind = Behind()
            notifier = LocalNotifier("gw-1", config, clock, behind)
            alarms = LocalAlarms("gw-1", LIMITS, clock, behind, listener=notifier.on_signal)
            await asyncio.sleep(0.3)  # the subscription is in place
            for minute, value in enumerate([5.0, 9.0, 9.5, 10.0, 10.2]):
                alarms.observe((reading(minute, value),))
            assert "sensor/fridge-1/t" in alarms.active
            await notifier.send_due()
            assert notifier.pending == ["alarm/sensor/fridge-1/t"]  # the relay refused it
            smtp.refuse = False
            assert await notifier.send_due() == 0  # the retry waits for its backoff
            await drain(notifier, clock)
            behind.value = timedelta(seconds=10)  # the uplink caught up
            await drain(notifier, clock)  # "cloud back" on every channel, once
            await drain(notifier, clock)
    finally:
        client.loop_stop()
        client.disconnect()
    subjects = [m.subject for m in smtp.mails]
    assert subjects == [
        "[LOCAL ALARM] gateway gw-1: sensor/fridge-1/t",
        "[cloud back] gateway gw-1: the cloud is reachable again",
    ]
    assert "fridge-1/t reads 10.0 degC, above 8.0" in smtp.mails[0].text
    assert "The cloud has not acknowledged the gateway's data for 60 min" in smtp.mails[0].text
    assert "sensor/fridge-1/t" in smtp.mails[1].text
    posted = [body["title"] for _, _, body in hook.posts]
    assert posted == subjects
    siren_messages = [siren.get(timeout=5) for _ in range(2)]
    assert b"LOCAL ALARM" in siren_messages[0]
    assert b"cloud is reachable again" in siren_messages[1]
    assert siren.empty()
    assert notifier.sent == 6  # two notices, three channels, each exactly once


def test_bad_urls_are_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="notify url #1"):
        NotifyConfig(urls=("nonsense://x",))


async def test_pending_notices_are_bounded_coalesced_per_key() -> None:
    class Never:
        async def send(self, url: str, title: str, body: str) -> str | None:
            return "down"

    clock = ManualClock(T0)
    config = NotifyConfig(urls=("json://127.0.0.1:9/x",), max_pending=2)
    notifier = LocalNotifier("gw-1", config, clock, Behind(), sender=Never())
    for key in ("a", "b", "a", "c"):
        notifier.on_signal(key, f"alarm {key}", True, T0)
    assert notifier.dropped == 1  # 'a' coalesced with itself; 'b' made room for 'c'
    assert notifier.pending == ["alarm/a", "alarm/c"]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, url: str, title: str, body: str) -> str | None:
        self.sent.append((title, body))
        return None


async def test_alarm_raised_while_the_cloud_is_reachable_says_so_and_no_cloud_back_follows() -> (
    None
):
    clock = ManualClock(T0)
    behind = Behind()
    behind.value = timedelta(seconds=4)  # the uplink keeps up
    recorder = Recorder()
    config = NotifyConfig(urls=("json://127.0.0.1:9/x",))
    notifier = LocalNotifier("gw-1", config, clock, behind, sender=recorder)
    alarms = LocalAlarms("gw-1", LIMITS, clock, behind, listener=notifier.on_signal)
    await alarms.raise_alarm("door:dock-1", "blocked at door dock-1: (01)0061(21)7 (recalled)")
    await notifier.send_due()
    await alarms.clear_alarm("door:dock-1", "door dock-1: clean passage")
    for _ in range(3):
        clock.advance(3)
        await notifier.send_due()
    titles = [title for title, _ in recorder.sent]
    assert titles == [
        "[LOCAL ALARM] gateway gw-1: door:dock-1",
        "[cleared] gateway gw-1: door:dock-1",
    ]
    raised, cleared = (body for _, body in recorder.sent)
    assert "The cloud is reachable (its acknowledgements are 4 s behind)" in raised
    assert "unreachable" not in raised
    assert "not acknowledged" not in raised
    assert cleared.endswith("Cleared at the gateway; the cloud is reachable.")
    # An outage later: only the alarm raised during it is named when the cloud is back.
    behind.value = timedelta(minutes=30)
    await alarms.raise_alarm("outbox/high_water", "outbox 85% full")
    behind.value = timedelta(seconds=2)
    for _ in range(3):
        clock.advance(3)
        await notifier.send_due()
    assert "not acknowledged the gateway's data for 30 min" in recorder.sent[2][1]
    assert recorder.sent[3][0] == "[cloud back] gateway gw-1: the cloud is reachable again"
    assert "outbox/high_water" in recorder.sent[3][1]
    assert "door:dock-1" not in recorder.sent[3][1]
    assert len(recorder.sent) == 4
