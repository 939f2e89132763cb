"""What the dashboard says to the people at the fridge: each alarm and excursion kind in plain
words, with what to do (pure).

Written for pharmacy and hospital staff, not engineers: no "action level", no sensor ids. Every
alert kind the cloud raises (``cloud.coldchain.alerts.AlertKind``) and every excursion kind and
level (``cloud.coldchain.excursions.Kind`` × ``cloud.coldchain.profiles.Level``) has an entry;
a test checks none is missing.

>>> excursion_words("high", "action", "12 min", "Fridge 2").says
'Too warm for 12 min: the products inside may be damaged.'
>>> excursion_words("high", "action", "12 min", "Fridge 2").todo[32:]
'move them to a working fridge (Fridge 2 is in range), keep them apart, and ask QA for a decision.'
>>> alarm_words("battery_low").todo
'Replace the sensor battery within a few days, or ask maintenance to.'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Advice:
    title: str
    """A short name for the alarm kind."""
    says: str
    """What is happening, in plain words."""
    todo: str
    """What to do now."""


_MOVE = "move them to a working fridge{alt}, keep them apart, and ask QA for a decision"

ALARMS: dict[str, Advice] = {
    "excursion_opened": Advice(
        "Temperature out of range", "The temperature left its allowed range.",
        "Check the unit now: door shut, power on, display normal. The open excursion above says"
        " what to do with the stock."),
    "excursion_escalated": Advice(
        "Temperature out of range: stock at risk",
        "The temperature went past the limit where products may be damaged.",
        "Do not use the products inside; " + _MOVE.format(alt="") + "."),
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
}  # fmt: skip
"""Every alert kind the cloud raises."""


@dataclass(frozen=True)
class _Excursion:
    says: str
    todo: str


EXCURSIONS: dict[tuple[str, str], _Excursion] = {
    ("high", "action"): _Excursion(
        "Too warm for {d}: the products inside may be damaged.",
        "Do not use the products inside; " + _MOVE + "."),
    ("high", "alert"): _Excursion(
        "Getting warm for {d}: above the usual range, products not yet at risk.",
        "Check that the door is shut and the unit is running; do not load more stock. If it"
        " keeps rising, move the stock to a working fridge{alt}."),
    ("low", "action"): _Excursion(
        "Too cold for {d}: the products inside may have frozen.",
        "Do not use the products inside, even if they look fine (frozen vaccines can be spoiled"
        " without showing it); " + _MOVE + "."),
    ("low", "alert"): _Excursion(
        "Getting cold for {d}: below the usual range, products not yet at risk.",
        "Check the thermostat setting and that no product touches the back wall or the"
        " cooling plate."),
    ("no_data", "alert"): _Excursion(
        "No temperature for {d}: nobody can tell whether the products are safe.",
        "Read the unit's own thermometer and write it down; check the sensor (battery, still"
        " inside). If the unit itself seems warm or cold, move the stock to a working"
        " fridge{alt} and tell QA."),
    ("no_data", "action"): _Excursion(
        "No temperature for {d}: nobody can tell whether the products are safe.",
        "Do not use the products until QA has decided; read the unit's own thermometer, write it"
        " down, and check the sensor (battery, still inside)."),
}  # fmt: skip
"""Every excursion kind and level."""


def alarm_words(kind: str) -> Advice:
    """The words for an alert kind; a kind unknown here still gets a readable title."""
    known = ALARMS.get(kind)
    if known is not None:
        return known
    title = kind.replace("_", " ").capitalize()
    return Advice(title, title + ".", "Look at the unit and tell your administrator.")


def excursion_words(kind: str, level: str, lasted: str, alternative: str | None = None) -> Advice:
    """What an open excursion means and what to do; ``lasted`` is how long it has been going
    on, ``alternative`` the name of a unit of the same site that is in range, if any."""
    found = EXCURSIONS.get((kind, level))
    alt = f" ({alternative} is in range)" if alternative else ""
    if found is None:
        return Advice(f"{kind} {level}", f"Out of range for {lasted}.", "Ask QA what to do.")
    title = {"high": "Too warm", "low": "Too cold", "no_data": "No temperature"}[kind]
    return Advice(title, found.says.format(d=lasted), found.todo.format(alt=alt))
