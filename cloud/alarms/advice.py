"""What each alert kind means to the people at the fridge, and what they should do (pure).

Used by the dashboard (``cloud.web``) and by the notifications (``cloud.alarms.message``), so a
text message at 3 a.m. says the same as the screen. Written for pharmacy and hospital staff,
not engineers: no "action level", no sensor ids. Every kind of
``cloud.coldchain.alerts.AlertKind`` has an entry (a test checks none is missing).

>>> alarm_words("battery_low").todo
'Replace the sensor battery within a few days, or ask maintenance to.'
>>> alarm_words("brand_new").title
'Brand new'
"""

from __future__ import annotations

from dataclasses import dataclass

MOVE_STOCK = "move them to a working fridge{alt}, keep them apart, and ask QA for a decision"
"""The advice for stock that may be damaged; ``{alt}`` names a unit in range, if any."""


@dataclass(frozen=True)
class Advice:
    title: str
    """A short name for the alarm kind."""
    says: str
    """What is happening, in plain words."""
    todo: str
    """What to do now."""


MOVE_STOCK = "move them to a working fridge{alt}, keep them apart, and ask QA for a decision"

ALARMS: dict[str, Advice] = {
    "excursion_opened": Advice(
        "Temperature out of range", "The temperature left its allowed range.",
        "Check the unit now: door shut, power on, display normal. If it stays out of range, the"
        " stock may need moving: see the excursion on the dashboard."),
    "excursion_escalated": Advice(
        "Temperature out of range: stock at risk",
        "The temperature went past the limit where products may be damaged.",
        "Do not use the products inside; " + MOVE_STOCK.format(alt="") + "."),
    "excursion_closed": Advice(
        "Temperature back in range", "The temperature is back within its range.",
        "Nothing urgent. Stock already put aside stays aside until QA decides."),
    "quarantine": Advice(
        "Stock put aside", "Stock was put aside (quarantined) because of the temperature.",
        "Keep it apart and do not use or send it out; QA will release or reject it."),
    "early_warning": Advice(
        "Limit will be reached soon",
        "The temperature is heading for its limit and will reach it soon if nothing changes.",
        "Check now that the door is shut and the unit is running, before the limit is reached."),
    "anomaly": Advice(
        "Unusual readings",
        "The readings look unusual, for example a door left open or a stuck sensor.",
        "Look at the unit: door closed, sensor in its place. Acknowledge once checked."),
    "no_data": Advice(
        "No temperature", "A sensor stopped sending temperatures.",
        "Check the sensor (battery, still inside the unit) and read the unit's own thermometer;"
        " write the temperature down until the sensor is back."),
    "sensor_never_reported": Advice(
        "New sensor silent", "A sensor that was set up has never sent a temperature.",
        "Check it is switched on and near the gateway; call whoever installed it."),
    "gateway_offline": Advice(
        "Gateway not connected",
        "The gateway (the box that sends the temperatures) is not connected.",
        "Check its power and network cable; it keeps the temperatures and sends them later."
        " Meanwhile read the units' own thermometers."),
    "outbox_filling": Advice(
        "Gateway cannot send", "The gateway cannot send its data and its storage is filling up.",
        "Check the site's internet connection and tell IT support."),
    "battery_low": Advice(
        "Battery low", "A sensor's battery is running low.",
        "Replace the sensor battery within a few days, or ask maintenance to."),
    "signal_low": Advice(
        "Weak signal", "A sensor's radio signal is weak; readings may be lost.",
        "Check that nothing metal blocks it; ask maintenance to move the gateway or the sensor."),
    "clock_skew": Advice(
        "Clock wrong", "A device's clock is wrong, so the times it gives may be off.",
        "Tell IT support: the device's time setting needs correcting."),
    "record_refused": Advice(
        "Data refused", "The system refused some of the data it received.",
        "Nothing to do at the unit; tell your administrator."),
    "stream_stalled": Advice(
        "Temperatures not checked",
        "Temperatures arrive but are not being checked, so alarms may be missed.",
        "Read the units' own thermometers until this is fixed, and tell your administrator now."),
    "stream_resumed": Advice(
        "Temperatures checked again", "Temperatures are being checked again.",
        "Nothing to do."),
    "batch_set_aside": Advice(
        "Data set aside unchecked", "A block of temperatures was set aside without being checked.",
        "Tell your administrator; QA may need to review that period."),
    "channel_failing": Advice(
        "Alarm messages not sent", "Alarm messages (e-mail, text, …) cannot be sent.",
        "Keep this dashboard in view for alarms and tell your administrator."),
    "calibration_due": Advice(
        "Calibration due soon", "A temperature sensor's calibration falls due soon.",
        "Book the calibration (or a calibrated replacement sensor) before the due date."),
    "calibration_overdue": Advice(
        "Calibration overdue",
        "A temperature sensor's calibration is overdue: its readings are flagged in reports.",
        "Have the sensor calibrated or replaced now, and record the certificate."),
}  # fmt: skip
"""Every alert kind the cloud raises."""


def alarm_words(kind: str) -> Advice:
    """The words for an alert kind; a kind unknown here still gets a readable title."""
    known = ALARMS.get(kind)
    if known is not None:
        return known
    title = kind.replace("_", " ").capitalize()
    return Advice(title, title + ".", "Look at the unit and tell your administrator.")
