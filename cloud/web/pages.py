"""HTML of the dashboard: the page frame and the overview's sections, as plain Python strings.

Every value that comes from the database goes through ``e`` (``html.escape``); nothing else
builds markup from data. Each overview section is rendered by one function, both for the first
page load and for the live updates the event stream pushes (the browser swaps the section).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

from cloud.web.kpis import Kpis
from cloud.web.permissions import Can
from cloud.web.queries import Alert, Excursion, QuarantinedLot, Receipt, Unit
from cloud.web.svg import sparkline
from cloud.web.wording import alarm_words, excursion_words

STATIC_VERSION = "12"
"""Bumped when app.js or app.css change, so browsers fetch the new files."""


def e(value: object) -> str:
    """Escapes any value for HTML text and attributes (None shows as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def when(at: datetime | None) -> str:
    """A UTC time as ``YYYY-MM-DD HH:MM``, in a ``<time>`` element with the full timestamp."""
    if at is None:
        return "—"
    return f'<time datetime="{e(at.isoformat())}">{e(f"{at:%Y-%m-%d %H:%M}")}</time>'


def duration(span: timedelta | None) -> str:
    """``2 d 3 h`` / ``1 h 05 min`` / ``4 min`` / ``12 s``; an em dash for None.

    >>> duration(timedelta(minutes=65)), duration(timedelta(seconds=12)), duration(None)
    ('1 h 05 min', '12 s', '—')
    >>> duration(timedelta(days=30)), duration(timedelta(hours=50))
    ('30 d', '2 d 2 h')
    """
    if span is None:
        return "—"
    seconds = int(span.total_seconds())
    if seconds >= 2 * 86400:
        days, hours = divmod(seconds // 3600, 24)
        return f"{days} d {hours} h" if hours else f"{days} d"
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def temp(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} °C"


def frame(title: str, body: str, *, user: str | None, script: bool = True, head: str = "") -> str:
    """The page around ``body``: header, navigation, the script and style of our own, and
    ``head`` (a chart page's library and chart code)."""
    who = (
        f'<span class="who">{e(user)}</span>'
        '<form method="post" action="/ui/logout"><button>Sign out</button></form>'
        if user
        else ""
    )
    # the sign-in page has nothing live, so it loads no script at all
    tag = f'<script src="/ui/static/app.js?v={STATIC_VERSION}" defer></script>' if script else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>{e(title)} · coldtrace</title>"
        f"<link rel='stylesheet' href='/ui/static/app.css?v={STATIC_VERSION}'>{tag}{head}</head>"
        "<body><header><a class='brand' href='/ui'>coldtrace</a>"
        "<nav><a href='/ui'>Overview</a> <a href='/ui/figures'>Inventory figures</a>"
        " <a href='/ui/audit'>Audit trail</a>"
        " <a href='/ui/admin'>Administration</a> <a href='/ui/account'>Account</a></nav>"
        f"<span class='live' id='live' hidden>live</span>{who}</header>"
        f"<main>{body}</main></body></html>"
    )


def section(name: str, title: str, inner: str) -> str:
    return f'<section id="{e(name)}" data-section="{e(name)}"><h2>{e(title)}</h2>{inner}</section>'


def units_section(units: Sequence[Unit]) -> str:
    if not units:
        return "<p class='empty'>No storage units are configured.</p>"
    sites: dict[str, list[Unit]] = {}
    for unit in units:
        sites.setdefault(unit.site_name, []).append(unit)
    parts = []
    for site, members in sites.items():
        cards = "".join(_unit_card(u) for u in members)
        zone = e(members[0].timezone)
        parts.append(f"<h3>{e(site)}</h3><div class='units' data-timezone='{zone}'>{cards}</div>")
    return "".join(parts)


def _unit_card(u: Unit) -> str:
    limits = "" if u.low is None and u.high is None else f"{temp(u.low)} – {temp(u.high)}"
    return (
        f'<article class="unit {e(u.state)}" data-location="{e(u.location_id)}"'
        f' data-state="{e(u.state)}"{_freshness(u)}>'
        f"<h4><a href='/ui/units/{e(quote(u.location_id, safe=''))}'>{e(u.name)}</a></h4>"
        f"<div class='kind'>{e(u.kind)} · {e(u.profile_name or 'no profile')}"
        f"</div><div class='now'>{e(temp(u.last_value))}</div>"
        f"<div class='detail'>{e(u.detail)} · {when(u.last_time)}</div>"
        f"{sparkline(u.trend, low=u.low, high=u.high, label=f'{u.name}: 24 h')}"
        f"<div class='limits'>{e(limits)}</div></article>"
    )


def _freshness(u: Unit) -> str:
    """When the card's data is from and how long it stays current, for app.js to grey the card
    with its age once it is older (also while the event stream is lost)."""
    if u.last_time is None:
        return ""
    seconds = int(u.silence_after.total_seconds())
    return f' data-last="{e(u.last_time.isoformat())}" data-silence-s="{seconds}"'


def excursions_section(
    excursions: Sequence[Excursion],
    alerts: Sequence[Alert],
    *,
    can: Can,
    now: datetime,
    units: Sequence[Unit] = (),
) -> str:
    """Open excursions in plain words with what to do (naming a unit of the same site and kind
    that is in range, where there is one), and the alerts still waiting."""
    zones = {u.site_id: u.timezone for u in units}
    rows = "".join(
        _excursion_row(x, can, now, _alternative(x, units), zones.get(x.site_id))
        for x in excursions
    )
    table = (
        "<table class='excursions'><thead><tr><th>Unit</th><th>What is happening</th>"
        "<th>Since</th><th>Peak</th><th>Stock put aside</th><th>Acknowledged</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if excursions
        else "<p class='empty'>No open excursion.</p>"
    )
    unit_zones = {u.location_id: u.timezone for u in units}
    waiting = "".join(_alert_item(a, can, unit_zones.get(a.location_id or "")) for a in alerts)
    warnings = (
        f"<h3>Early warnings and alerts</h3><ul class='alerts'>{waiting}</ul>" if alerts else ""
    )
    return table + warnings


def ack_button(ids: Sequence[int], can: Can, done: str = "waiting") -> str:
    """The Acknowledge button for those who may press it; a plain word for the others."""
    if not can.acknowledge:
        return f"<span class='waiting'>{e(done)}</span>"
    return (
        f'<button class="ack" data-alerts="{e(",".join(str(i) for i in ids))}">Acknowledge</button>'
    )


def _zone(timezone: str | None) -> str:
    """The site's zone on an element, for app.js to show its times in (else the page's)."""
    return f' data-timezone="{e(timezone)}"' if timezone else ""


def _alert_item(a: Alert, can: Can, timezone: str | None = None) -> str:
    words = alarm_words(a.kind)
    where = f" · {e(a.location_name)}" if a.location_name else ""
    return (
        f'<li class="{e(a.severity)}" data-alert="{a.alert_id}" data-kind="{e(a.kind)}"'
        f"{_zone(timezone)}>"
        f"{when(a.at)} <b title='{e(a.message)}'>{e(words.title)}</b>{where}: {e(words.says)}"
        f" <span class='todo'>What to do: {e(words.todo)}</span> {ack_button([a.alert_id], can)}"
        "</li>"
    )


def _alternative(x: Excursion, units: Sequence[Unit]) -> str | None:
    """A unit of the same site and kind that is in range now, to move the stock to."""
    for u in units:
        same = u.site_id == x.site_id and u.kind == x.location_kind
        if same and u.location_id != x.location_id and u.state == "ok":
            return u.name
    return None


def _excursion_row(
    x: Excursion, can: Can, now: datetime, alternative: str | None, timezone: str | None = None
) -> str:
    lots = ", ".join(f'<a href="/ui/lots/{lot.lot_id}">{e(lot)}</a>' for lot in x.lots)
    ack = ack_button(x.unacknowledged, can) if x.unacknowledged else f"✓ {e(x.acknowledged_by)}"
    words = excursion_words(x.kind, x.level, duration(now - x.started_at), alternative)
    sensor = f"<br><small>sensor {e(x.sensor_name)}</small>" if x.sensor_name else ""
    sensor += (f"<br><small><a class='report' href='/ui/reports/excursion/{x.excursion_id}'"
               " download>excursion report (PDF)</a></small>")  # fmt: skip
    return (
        f'<tr class="{e(x.level)}" data-excursion="{x.excursion_id}" data-kind="{e(x.kind)}"'
        f' data-level="{e(x.level)}"{_zone(timezone)}><td>{e(x.location_name)}{sensor}</td>'
        f"<td><b>{e(words.says)}</b><div class='todo'>What to do: {e(words.todo)}</div></td>"
        f"<td>{when(x.started_at)}</td>"
        f"<td>{e(temp(x.peak_value))}</td><td>{lots or '—'}</td><td>{ack}</td></tr>"
    )


CONFIRM_OPEN = (
    "<label class='confirm-open'><input type='checkbox' name='confirm_open_excursion'>"
    " I know an excursion is still open and release anyway</label>"
)
"""The confirmation a release needs while an excursion affecting the lot is open (app.js adds
it to a form when the server asks for it)."""


def sign_fields(meanings: Sequence[tuple[str, str]]) -> str:
    """What a signer types again at the moment of signing (21 CFR 11.200), and the meanings
    (value, words) the action may be signed as."""
    options = "".join(f"<option value='{e(v)}'>{e(words)}</option>" for v, words in meanings)
    return (
        "<fieldset class='sign'><legend>Electronic signature</legend>"
        "<input name='sign_username' required maxlength='64' autocomplete='username'"
        " placeholder='User name' aria-label='User name'>"
        "<input type='password' name='sign_password' required maxlength='1024'"
        " autocomplete='current-password' placeholder='Password' aria-label='Password'>"
        "<input name='sign_code' maxlength='8' inputmode='numeric' autocomplete='one-time-code'"
        " placeholder='Code (if enrolled)' aria-label='One-time code'>"
        f"<select name='sign_meaning' aria-label='Meaning of the signature'>{options}</select>"
        "</fieldset>"
    )


SIGN_FIELDS = sign_fields(
    (("released", "Released: approved for use"), ("approved", "Approved"),
     ("rejected", "Rejected: not to be used"))
)  # fmt: skip
"""What a disposition's signer types again at the moment of signing (21 CFR 11.200)."""


def disposition_form(lot_id: int, *, confirm: bool = False) -> str:
    """Release or reject with a reason; ``confirm``: with the open-excursion confirmation."""
    return (
        f'<form class="disposition" data-lot="{lot_id}">'
        '<input name="reason" required maxlength="500" placeholder="Reason (required)"'
        f' aria-label="Reason">{CONFIRM_OPEN if confirm else ""}{SIGN_FIELDS}'
        '<button name="decision" value="release">Release</button>'
        '<button name="decision" value="reject" class="danger">Reject</button>'
        '<output class="result"></output></form>'
    )


def quarantine_section(lots: Sequence[QuarantinedLot], *, can: Can) -> str:
    if not lots:
        return "<p class='empty'>No lot is waiting for a disposition.</p>"
    rows = "".join(
        f'<tr data-lot="{q.lot_id}"><td><a href="/ui/lots/{q.lot_id}">{e(q.product)}</a>'
        f"<br><small>GTIN {e(q.gtin)} · lot {e(q.lot_number)}</small></td>"
        f"<td>{q.quantity}</td><td>{e(', '.join(q.locations))}</td><td>{when(q.since)}</td>"
        f"<td>{_why(q)}</td><td>{_disposition(q, can)}</td></tr>"
        for q in lots
    )
    return (
        "<table class='quarantine'><thead><tr><th>Lot</th><th>Units</th><th>Where</th>"
        "<th>Since</th><th>Why</th><th>QA disposition</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _why(q: QuarantinedLot) -> str:
    """Why the stock was put aside, in words (the ledger's reason, in a tooltip, is technical)."""
    if q.excursion is None:
        return f"<small>{e(q.reason)}</small>"
    kind, _, place, start = q.excursion
    what = {"high": "was too warm", "low": "was too cold"}.get(kind, "had no temperature reading")
    return f"<small title='{e(q.reason)}'>{e(place)} {what} from {when(start)}</small>"


def _disposition(q: QuarantinedLot, can: Can) -> str:
    if can.dispose:
        return disposition_form(q.lot_id, confirm=q.open_excursion)
    return "<span class='waiting'>waiting for QA</span>"


def receiving_section(receipts: Sequence[Receipt]) -> str:
    if not receipts:
        return "<p class='empty'>No dock-door passage today.</p>"
    rows = "".join(
        f'<tr class="{e(r.outcome)}" data-receipt="{r.receipt_id}"><td>{when(r.at)}</td>'
        f"<td>{e(r.door_name or r.door_id)}</td><td>{e(r.direction)}</td>"
        f"<td>{e(', '.join(r.asn_references) or '—')}</td><td>{r.received}</td>"
        f"<td>{e(r.outcome)}</td><td>{_discrepancy(r)}</td></tr>"
        for r in receipts
    )
    return (
        "<table class='receiving'><thead><tr><th>At</th><th>Door</th><th>Dir.</th><th>ASN</th>"
        "<th>Units</th><th>Outcome</th><th>Discrepancies</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _discrepancy(r: Receipt) -> str:
    found = [(r.short, "short"), (r.over, "over"), (r.unexpected, "unexpected"),
             (r.unconfirmed, "unconfirmed")]  # fmt: skip
    text = ", ".join(f"{n} {label}" for n, label in found if n)
    return f"<span class='bad'>{e(text)}</span>" if text else "none"


def kpis_section(k: Kpis, period: timedelta) -> str:
    accuracy = "—" if k.receiving_accuracy is None else f"{k.receiving_accuracy:.0%}"
    tiles: list[tuple[str, str, str]] = [
        ("Excursions", str(k.excursions), f"{k.action_excursions} at action level"),
        ("Time to acknowledge", duration(k.median_ack),
         f"median; worst {duration(k.max_ack)}; {k.unacknowledged} waiting"),
        ("Time out of range", duration(k.out_of_range), "all units, summed"),
        ("Receiving accuracy", accuracy,
         f"{k.complete_passages}/{k.inbound_passages} passages complete;"
         f" {k.discrepancies} discrepancies"),
        ("Recall response", duration(k.median_recall_response), f"median of {k.recalls} recalls"),
    ]  # fmt: skip
    body = "".join(
        f"<div class='kpi'><div class='label'>{e(label)}</div><div class='value'>{e(value)}"
        f"</div><div class='note'>{e(note)}</div></div>"
        for label, value, note in tiles
    )
    return f"<p class='period'>Last {e(duration(period))}</p><div class='kpis'>{body}</div>"


SECTIONS: dict[str, str] = {
    "units": "Storage units",
    "excursions": "Open excursions and alarms",
    "alarms": "Notifications and planned suppression",
    "gateways": "Gateways and processing",
    "quarantine": "Quarantined lots awaiting disposition",
    "receiving": "Today's receiving",
    "kpis": "Key figures",
}


def overview(sections: dict[str, str], *, user: str) -> str:
    body = "".join(section(name, title, sections[name]) for name, title in SECTIONS.items())
    return frame("Overview", f"<div class='overview'>{body}</div>", user=user)


def login(message: str | None = None, *, provider: str | None = None) -> str:
    """The sign-in page; ``provider``: the label of the OpenID Connect provider, if any."""
    note = f"<p class='error' role='alert'>{e(message)}</p>" if message else ""
    sso = (
        f"<p class='sso'><a href='/ui/login/oidc'>Sign in with {e(provider)}</a></p>"
        if provider
        else ""
    )
    body = (
        "<section class='login'><h2>Sign in</h2>"
        f"{note}<form method='post' action='/ui/login'>"
        "<label>User name <input name='username' required autocomplete='username'"
        " maxlength='64'></label>"
        "<label>Password <input type='password' name='password' required"
        " autocomplete='current-password' maxlength='1024'></label>"
        "<label>One-time code (if enrolled) <input name='code' inputmode='numeric'"
        " autocomplete='one-time-code' pattern='[0-9 ]{6,8}' maxlength='8'></label>"
        f"<button>Sign in</button></form>{sso}"
        "<details><summary>Sign in with an API token</summary>"
        "<p>For service accounts: paste a coldtrace API token (from <code>coldtrace users"
        " add</code> or your administrator). Signing records needs a password.</p>"
        "<form method='post' action='/ui/login'>"
        "<input type='password' name='token' required autocomplete='off'"
        " aria-label='API token' placeholder='ct_…'>"
        "<button>Sign in with token</button></form></details></section>"
    )
    return frame("Sign in", body, user=None, script=False)
