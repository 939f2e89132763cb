"""What each alert kind means to people by default: its severity and its route (pure).

A route says how far an alert goes:

- ``page``: through every step of the escalation policy, repeated until acknowledged;
- ``notify``: the policy's first step, once;
- ``none``: the alarm list and dashboard only.

A policy may override the route per kind. Critical alarms ignore quiet hours (an action-level
excursion at 3 a.m. wakes someone); the others wait for the quiet hours to end.

>>> default_route("excursion_opened", "critical"), default_route("excursion_closed", "info")
('page', 'none')
>>> default_route("some_future_kind", "warning")
'notify'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Route = Literal["page", "notify", "none"]
Severity = Literal["info", "warning", "critical"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class KindDefault:
    severity: Severity
    route: Route
    title: str


KINDS: dict[str, KindDefault] = {
    "excursion_opened": KindDefault("warning", "page", "Temperature excursion"),
    "excursion_escalated": KindDefault("critical", "page", "Excursion reached action level"),
    "excursion_closed": KindDefault("info", "none", "Excursion ended"),
    # The excursion alert beside it already pages, with the lots listed.
    "quarantine": KindDefault("critical", "none", "Lots quarantined"),
    "early_warning": KindDefault("warning", "notify", "Limit expected soon"),
    "anomaly": KindDefault("warning", "notify", "Sensor anomaly"),
    "no_data": KindDefault("warning", "page", "Sensor silent"),
    "sensor_never_reported": KindDefault("warning", "notify", "Sensor never reported"),
    "gateway_offline": KindDefault("critical", "page", "Gateway offline"),
    "outbox_filling": KindDefault("warning", "page", "Gateway outbox filling"),
    "battery_low": KindDefault("warning", "notify", "Battery low"),
    "signal_low": KindDefault("warning", "notify", "Signal low"),
    "clock_skew": KindDefault("warning", "notify", "Device clock skewed"),
    "record_refused": KindDefault("warning", "notify", "Record refused"),
    "stream_stalled": KindDefault("critical", "page", "Processing stalled"),
    "stream_resumed": KindDefault("info", "none", "Processing resumed"),
    "batch_set_aside": KindDefault("critical", "page", "Batch set aside"),
    "channel_failing": KindDefault("critical", "page", "Notification channel failing"),
    "calibration_due": KindDefault("warning", "notify", "Sensor calibration due soon"),
    "calibration_overdue": KindDefault("warning", "notify", "Sensor calibration overdue"),
}
"""Known kinds. Kinds raised by other rooms that are not listed get a route from severity."""


def default_route(kind: str, severity: str) -> Route:
    """The route of ``kind`` unless a policy says otherwise; info never notifies by itself."""
    known = KINDS.get(kind)
    if known is not None:
        if known.route != "none" and severity == "info":
            return "none"  # e.g. a door-open anomaly, raised as info
        return known.route
    return "none" if severity == "info" else "notify"


def title_of(kind: str) -> str:
    """A short human title for a notification subject.

    >>> title_of("gateway_offline"), title_of("brand_new")
    ('Gateway offline', 'Brand new')
    """
    known = KINDS.get(kind)
    return known.title if known else kind.replace("_", " ").capitalize()


def at_least(severity: str, minimum: str) -> bool:
    """True when ``severity`` is ``minimum`` or worse.

    >>> at_least("critical", "warning"), at_least("info", "warning")
    (True, False)
    """
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(minimum, 0)
