"""What the dashboard says to the people at the fridge: each alarm and excursion kind in plain
words, with what to do (pure).

Written for pharmacy and hospital staff, not engineers: no "action level", no sensor ids. Every
alert kind the cloud raises (``cloud.coldchain.alerts.AlertKind``) and every excursion kind and
level (``cloud.coldchain.excursions.Kind`` × ``cloud.coldchain.profiles.Level``) has an entry;
a test checks none is missing. The alarm kinds' words live in ``cloud.alarms.advice`` (the
notifications say the same); the excursions' are here.

>>> excursion_words("high", "action", "12 min", "Fridge 2").says
'Too warm for 12 min: the products inside may be damaged.'
>>> excursion_words("high", "action", "12 min", "Fridge 2").todo[32:]
'move them to a working fridge (Fridge 2 is in range), keep them apart, and ask QA for a decision.'
>>> alarm_words("battery_low").todo
'Replace the sensor battery within a few days, or ask maintenance to.'
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud.alarms.advice import ALARMS, MOVE_STOCK, Advice, alarm_words

__all__ = ["ALARMS", "EXCURSIONS", "Advice", "alarm_words", "excursion_words"]


@dataclass(frozen=True)
class _Excursion:
    says: str
    todo: str


EXCURSIONS: dict[tuple[str, str], _Excursion] = {
    ("high", "action"): _Excursion(
        "Too warm for {d}: the products inside may be damaged.",
        "Do not use the products inside; " + MOVE_STOCK + "."),
    ("high", "alert"): _Excursion(
        "Getting warm for {d}: above the usual range, products not yet at risk.",
        "Check that the door is shut and the unit is running; do not load more stock. If it"
        " keeps rising, move the stock to a working fridge{alt}."),
    ("low", "action"): _Excursion(
        "Too cold for {d}: the products inside may have frozen.",
        "Do not use the products inside, even if they look fine (frozen vaccines can be spoiled"
        " without showing it); " + MOVE_STOCK + "."),
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


def excursion_words(kind: str, level: str, lasted: str, alternative: str | None = None) -> Advice:
    """What an open excursion means and what to do; ``lasted`` is how long it has been going
    on, ``alternative`` the name of a unit of the same site that is in range, if any."""
    found = EXCURSIONS.get((kind, level))
    alt = f" ({alternative} is in range)" if alternative else ""
    if found is None:
        return Advice(f"{kind} {level}", f"Out of range for {lasted}.", "Ask QA what to do.")
    title = {"high": "Too warm", "low": "Too cold", "no_data": "No temperature"}[kind]
    return Advice(title, found.says.format(d=lasted), found.todo.format(alt=alt))
