"""The unit page's excursions: each one's closure (who, when, root cause, corrective action,
e-signatures) and, for QA, the form that closes an ended one.

The form posts to ``/ui/excursions/{id}/closure``, which closes through the REST route's own
``cloud.api.alarm_actions.close_signed``; this module only reads and lays out. The root causes
and corrective actions are the API's enumerations (``cloud.alarms.actions``), in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.alarms.actions import CORRECTIVE_ACTIONS, ROOT_CAUSES, Closure
from cloud.signatures.core import Signature
from cloud.signatures.store import signatures_for
from cloud.web.pages import duration, e, sign_fields, temp, when
from cloud.web.permissions import Can
from cloud.web.wording import excursion_words

SHOWN = 30
"""At most this many excursions on the page: those waiting for a closure first, then the latest."""

ROOT_CAUSE_WORDS: dict[str, str] = {
    "equipment_failure": "Equipment failure (compressor, thermostat, fan)",
    "power_outage": "Power cut",
    "door_left_open": "Door left open or not shut properly",
    "defrost_cycle": "Defrost cycle",
    "overloading": "Overloaded or warm stock loaded",
    "sensor_fault": "Sensor fault (the products were not affected)",
    "transport_delay": "Transport delay",
    "human_error": "Human error",
    "planned_maintenance": "Planned maintenance",
    "other": "Other (describe it)",
}
"""Every root cause the API accepts, as the form offers it (a test checks none is missing)."""

ACTION_WORDS: dict[str, str] = {
    "equipment_repaired": "Equipment repaired",
    "product_moved": "Products moved to a working unit",
    "setpoint_adjusted": "Thermostat setting adjusted",
    "sensor_replaced": "Sensor replaced",
    "staff_retrained": "Staff retrained",
    "procedure_changed": "Procedure changed",
    "supplier_informed": "Supplier or carrier informed",
    "no_action_needed": "No action needed",
    "other": "Other (describe it)",
}
"""Every corrective action the API accepts, in words."""

CLOSE_MEANINGS = (("reviewed", "Reviewed"), ("approved", "Approved"))
"""What closing an excursion may be signed as (``cloud.signatures.core.ALLOWED``)."""


@dataclass(frozen=True)
class UnitExcursion:
    excursion_id: int
    kind: str
    level: str
    started_at: datetime
    ended_at: datetime | None
    peak_value: float | None
    closure: Closure | None
    signatures: tuple[Signature, ...] = ()


_SQL = """
SELECT x.excursion_id, x.kind, x.level, x.started_at, x.ended_at, x.peak_value,
       c.excursion_id, c.root_cause, c.root_cause_detail, c.corrective_action,
       c.corrective_action_detail, c.comment, c.closed_by, c.closed_at
FROM excursions x LEFT JOIN excursion_closures c USING (excursion_id)
WHERE x.location_id = %s
ORDER BY (x.ended_at IS NOT NULL AND c.excursion_id IS NULL) DESC, x.started_at DESC
LIMIT %s
"""


async def unit_excursions(
    conn: AsyncConnection[TupleRow], location_id: str, limit: int = SHOWN
) -> list[UnitExcursion]:
    """The unit's excursions, those ended and not yet closed first, then the latest, with their
    closures and signatures."""
    cur = await conn.execute(_SQL, (location_id, limit))
    rows = await cur.fetchall()
    signed: dict[str, list[Signature]] = {}
    for s in await signatures_for(conn, [f"excursion:{r[0]}" for r in rows]):
        signed.setdefault(s.subject, []).append(s)
    return [
        UnitExcursion(
            int(r[0]),
            str(r[1]),
            str(r[2]),
            r[3],
            r[4],
            r[5],
            closure=None if r[6] is None else Closure(*r[6:]),
            signatures=tuple(signed.get(f"excursion:{r[0]}", ())),
        )
        for r in rows
    ]


def _options(words: dict[str, str], names: Sequence[str]) -> str:
    return "".join(f"<option value='{e(n)}'>{e(words[n])}</option>" for n in names)


def closure_form(excursion_id: int, level: str) -> str:
    """Root cause and corrective action from the API's lists, their descriptions, a comment;
    at action level the corrective action is required and the closer signs (21 CFR 11.200)."""
    at_risk = level == "action"
    choose = "<option value='' selected>Choose…</option>"
    first = choose if at_risk else "<option value=''>None</option>"
    signing = sign_fields(CLOSE_MEANINGS) if at_risk else ""
    return (
        f"<form class='closure' data-excursion='{excursion_id}' data-level='{e(level)}'>"
        f"<label>Root cause <select name='root_cause' required>{choose}"
        f"{_options(ROOT_CAUSE_WORDS, ROOT_CAUSES)}</select></label>"
        "<input name='root_cause_detail' maxlength='1000' aria-label='Root cause in words'"
        " placeholder='Details (needed for Other)'>"
        "<label>Corrective action <select name='corrective_action'"
        f"{' required' if at_risk else ''}>"
        f"{first}"
        f"{_options(ACTION_WORDS, CORRECTIVE_ACTIONS)}</select></label>"
        "<input name='corrective_action_detail' maxlength='1000'"
        " aria-label='Corrective action in words' placeholder='Details (needed for Other)'>"
        "<textarea name='comment' maxlength='1000' rows='2' aria-label='Comment'"
        " placeholder='Comment (optional)'></textarea>"
        f"{signing}<button>Close excursion</button>"
        "<output class='result' aria-live='polite'></output></form>"
    )


def _closed(c: Closure, signatures: Sequence[Signature]) -> str:
    cause = ROOT_CAUSE_WORDS.get(c.root_cause, c.root_cause)
    action = ACTION_WORDS.get(c.corrective_action or "", c.corrective_action or "none")
    signed = "".join(
        f"<li data-signature='{s.signature_id}'>Signed: <b>{e(s.manifestation())}</b></li>"
        for s in signatures
    )
    listed = f"<ul class='signed'>{signed}</ul>" if signed else ""
    return (
        f"<div class='closed'><p><b>Closed by {e(c.closed_by)}</b> on {when(c.closed_at)}.</p>"
        f"<p>Root cause: {e(cause)}{_detail(c.root_cause_detail)}</p>"
        f"<p>Corrective action: {e(action)}{_detail(c.corrective_action_detail)}</p>"
        f"{f'<p>Comment: {e(c.comment)}</p>' if c.comment else ''}"
        f"{listed}</div>"
    )


def _detail(text: str | None) -> str:
    return f" ({e(text)})" if text else ""


def _state(x: UnitExcursion, can: Can) -> str:
    if x.closure is not None:
        return _closed(x.closure, x.signatures)
    if x.ended_at is None:
        return "<span class='waiting'>still going on: it can be closed once it ends</span>"
    if not can.close:
        return "<span class='waiting'>waiting for QA to close it</span>"
    needs = (
        "<p class='needs'>The products were at risk: a corrective action and your electronic"
        " signature are needed.</p>"
        if x.level == "action"
        else ""
    )
    return needs + closure_form(x.excursion_id, x.level)


def _row(x: UnitExcursion, can: Can) -> str:
    lasted = "a while" if x.ended_at is None else duration(x.ended_at - x.started_at)
    words = excursion_words(x.kind, x.level, lasted)
    what = words.says if x.ended_at is not None else f"{words.title} (still going on)"
    closed = "closed" if x.closure is not None else "open"
    return (
        f"<tr class='{e(x.level)}' data-excursion='{x.excursion_id}' data-closure='{closed}'>"
        f"<td>{e(what)}<br><small><a class='report' download"
        f" href='/ui/reports/excursion/{x.excursion_id}'>excursion report (PDF)</a></small></td>"
        f"<td>{when(x.started_at)}</td><td>{when(x.ended_at)}</td><td>{e(temp(x.peak_value))}"
        f"</td><td>{_state(x, can)}</td></tr>"
    )


def excursions_section(excursions: Sequence[UnitExcursion], can: Can) -> str:
    """The unit's excursions with their closures; the close form where ``can`` allows it."""
    if not excursions:
        return (
            "<section class='unit-excursions'><h3>Excursions</h3><p class='empty'>None.</p>"
            "</section>"
        )
    rows = "".join(_row(x, can) for x in excursions)
    return (
        "<section class='unit-excursions'><h3>Excursions</h3>"
        "<table class='excursions'><thead><tr><th>What happened</th><th>From</th><th>Until</th>"
        f"<th>Peak</th><th>Closure</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )
