"""The admin pages' bodies: a read-only view for every role, and the forms for admins.

Every value from the database goes through ``e``. The forms post through ``static/admin.js``
(``cloud.admin.forms``); the server checks the role again on every action.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from cloud.admin import queries
from cloud.admin.forms import Field, button, form, table
from cloud.admin.writes import KINDS
from cloud.coldchain.profiles import StorageProfile
from cloud.masterdata.store import Location, Lot, Product, Site
from cloud.masterdata.values import LOCATION_KINDS
from cloud.processing.streams import StreamState
from cloud.web.pages import duration, e, when

SECTIONS = (
    ("sites", "Sites"), ("locations", "Locations"), ("profiles", "Storage profiles"),
    ("products", "Products"), ("lots", "Lots"), ("sensors", "Sensors"),
    ("gateways", "Gateways"), ("doors", "RFID readers and doors"), ("users", "Users"),
    ("import", "CSV import and export"), ("audit", "Audit trail"),
)  # fmt: skip
ROLES = ("viewer", "operator", "qa", "admin")

PROFILE_HELP = {
    "action_low": "Below this the product is at risk: an action-level excursion quarantines the"
    " stock (°C).",
    "action_high": "Above this the product is at risk: an action-level excursion quarantines the"
    " stock (°C).",
    "alert_low": "Below this staff are warned before stock is at risk; empty: the action limit"
    " (°C).",
    "alert_high": "Above this staff are warned before stock is at risk; empty: the action limit"
    " (°C).",
    "on_delay": "How long a breach must last before it counts, so a door opened for a minute"
    " does not (ISO 8601, e.g. PT10M).",
    "off_delay": "How long readings must be back in range before an excursion closes (PT5M).",
    "deadband": "How far inside the alert limit a reading must be to count as back in range,"
    " so a reading hovering on the limit does not open and close excursions (°C).",
    "freeze_damage": "Freezing damages this product: a reading at or below the freeze threshold"
    " is an action-level excursion at once, without the on-delay.",
    "freeze_threshold": "The temperature counted as freezing (°C).",
    "silence_after": "No reading for this long raises 'no data': a silent sensor never counts"
    " as in range (PT15M).",
    "mkt_window": "The window mean kinetic temperature is judged over (PT24H refrigerated,"
    " P30D room temperature).",
    "mkt_limit": "The mean kinetic temperature the window may not exceed (°C); empty: none.",
}


def nav(current: str) -> str:
    links = "".join(
        f"<a href='/ui/admin/{key}'{' aria-current=page' if key == current else ''}>{e(t)}</a>"
        for key, t in SECTIONS
    )
    return f"<nav class='admin-nav'><a href='/ui/admin'>Administration</a>{links}</nav>"


def page(current: str, title: str, body: str, *, admin: bool, notice: str = "") -> str:
    mode = (
        ""
        if admin
        else "<p class='admin-readonly'>Read-only: only the admin role can change this.</p>"
    )
    shown = f"<p class='admin-notice' role='status'>{e(notice)}</p>" if notice else ""
    return f"{nav(current)}<h1>{e(title)}</h1>{mode}{shown}{body}"


def index() -> str:
    items = "".join(f"<li><a href='/ui/admin/{key}'>{e(title)}</a></li>" for key, title in SECTIONS)
    return (
        f"{nav('')}<h1>Administration</h1>"
        "<p>Set up a site in the browser: the site, its locations, the storage profiles that"
        " judge them, the sensors mounted in them and the gateway that reads them.</p>"
        f"<ul class='admin-index'>{items}</ul>"
    )


def _choices(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(v, f"{label} ({v})" if label != v else v) for v, label in pairs]


def sites(found: Sequence[Site], *, admin: bool) -> str:
    rows = [[e(s.site_id), e(s.name), e(s.timezone)] for s in found]
    out = table(("Site", "Name", "Time zone"), rows, empty="No site yet.")
    if admin:
        out += form("Add or change a site", "/ui/admin/api/save/site", [
            Field("site_id", "Site id", "A short, permanent id (letters, digits, dashes).",
                  required=True, placeholder="north"),
            Field("name", "Name", "What people call it.", required=True),
            Field("timezone", "Time zone", "IANA name, e.g. Europe/Berlin; times on the"
                  " dashboard are shown in it.", value="UTC", required=True),
        ])  # fmt: skip
    return out


def locations(found: Sequence[Location], site_ids: Sequence[Site],
              profiles: Sequence[StorageProfile], *, admin: bool) -> str:  # fmt: skip
    out = _tree(found) if found else "<p class='admin-empty'>No location yet.</p>"
    if admin:
        out += form("Add or change a location", "/ui/admin/api/save/location", [
            Field("location_id", "Location id", "A short, permanent id.", required=True,
                  placeholder="north-fridge-1"),
            Field("site_id", "Site", kind="select", required=True,
                  choices=_choices([(s.site_id, s.name) for s in site_ids])),
            Field("parent_id", "Inside", "The zone or room it is in (same site).",
                  kind="select", choices=_choices([(x.location_id, x.name) for x in found])),
            Field("kind", "Kind", kind="select", required=True,
                  choices=[(k, k.replace("_", " ")) for k in sorted(LOCATION_KINDS)]),
            Field("name", "Name", required=True, placeholder="Vaccine fridge 1"),
            Field("profile_id", "Storage profile", "Judges the readings of the sensors"
                  " mounted here; none: not judged.", kind="select",
                  choices=_choices([(p.profile_id, p.name) for p in profiles])),
        ])  # fmt: skip
    return out


def _tree(found: Sequence[Location]) -> str:
    children: dict[str | None, list[Location]] = {}
    ids = {loc.location_id for loc in found}
    for loc in found:
        parent = loc.parent_id if loc.parent_id in ids else None
        children.setdefault(parent, []).append(loc)

    def branch(parent: str | None) -> str:
        items = "".join(
            f"<li data-location='{e(loc.location_id)}'><strong>{e(loc.name)}</strong>"
            f" <code>{e(loc.location_id)}</code> · {e(loc.kind.replace('_', ' '))} ·"
            f" site {e(loc.site_id)} · profile {e(loc.profile_id or 'none')}"
            f"{branch(loc.location_id)}</li>"
            for loc in children.get(parent, [])
        )
        return f"<ul class='admin-tree'>{items}</ul>" if items else ""

    return branch(None)


def profiles(found: Sequence[tuple[StorageProfile, bool]], *, admin: bool) -> str:
    cols = ("action_low", "action_high", "alert_low", "alert_high", "on_delay", "off_delay",
            "deadband", "freeze_damage", "silence_after")  # fmt: skip
    rows = []
    for p, standard in found:
        cells = [e(p.profile_id) + (" (standard)" if standard else ""), e(p.name)]
        for c in cols:
            value = getattr(p, c)
            cells.append(duration(value) if hasattr(value, "total_seconds") else e(value))
        rows.append(cells)
    legend = "".join(
        f"<dt>{e(k.replace('_', ' '))}</dt><dd>{e(v)}</dd>" for k, v in PROFILE_HELP.items()
    )
    out = table(("Profile", "Name", *[c.replace("_", " ") for c in cols]), rows,
                empty="No profile.")  # fmt: skip
    out += f"<details class='admin-legend' open><summary>What each value means</summary><dl>{legend}</dl></details>"  # noqa: E501
    if admin:
        fields = [
            Field("profile_id", "Profile id", "Standard profiles (std-…) cannot be changed.",
                  required=True, placeholder="vaccines-2-8"),
            Field("name", "Name", required=True),
        ]  # fmt: skip
        for name, text in PROFILE_HELP.items():
            kind = "checkbox" if name == "freeze_damage" else "text"
            fields.append(Field(name, name.replace("_", " "), text, kind=kind))
        out += form("Add or change a custom profile", "/ui/admin/api/save/profile", fields)
    return out


def products(found: Sequence[Product], profile_ids: Sequence[str], *, admin: bool) -> str:
    rows = [[e(p.gtin), e(p.name), e(p.profile_id), duration(p.stability_budget)] for p in found]
    out = table(("GTIN", "Name", "Profile", "Stability budget"), rows, empty="No product yet.")
    if admin:
        out += form("Add or change a product", "/ui/admin/api/save/product", [
            Field("gtin", "GTIN-14", "14 digits; the last is the GS1 check digit, which is"
                  " checked.", required=True, attrs={"pattern": "[0-9]{14}",
                                                     "data-gtin": "1"}),
            Field("name", "Name", required=True),
            Field("profile_id", "Storage profile", kind="select", required=True,
                  choices=[(p, p) for p in profile_ids]),
            Field("stability_budget", "Stability budget", "Total time out of range the product"
                  " tolerates over its life (ISO 8601: PT12H, P14D).", required=True,
                  value="PT0S"),
        ])  # fmt: skip
    return out


def lots(found: Sequence[Lot], products_: Sequence[Product], *, admin: bool) -> str:
    names = {p.gtin: p.name for p in products_}
    rows = [[f"<a href='/ui/lots/{x.lot_id}'>{e(x.lot_number)}</a>", e(names.get(x.gtin, "")),
             e(x.gtin), e(x.expiry or "—"), e(x.status)] for x in found]  # fmt: skip
    out = table(("Lot", "Product", "GTIN", "Expiry", "Status"), rows, empty="No lot yet.")
    if admin:
        out += form("Add a lot or change its expiry", "/ui/admin/api/save/lot", [
            Field("gtin", "Product", kind="select", required=True,
                  choices=_choices([(p.gtin, p.name) for p in products_])),
            Field("lot_number", "Lot number", "GS1 AI (10): up to 20 characters.",
                  required=True),
            Field("expiry", "Expiry", kind="date"),
        ])  # fmt: skip
    return out


def sensors(
    mounts: dict[str, list[queries.MountEntry]], descriptions: dict[str, str | None],
    places: Sequence[Location], unmounted: Sequence[tuple[str, datetime | None]], *,
    admin: bool,
) -> str:  # fmt: skip
    names = {x.location_id: x.name for x in places}
    rows = []
    for sensor_id, history in sorted(mounts.items()):
        now = history[-1]
        past = "; ".join(
            f"{e(names.get(m.location_id or '', m.location_id or 'unmounted'))} from "
            + (when(m.valid_from) if m.valid_from else "the start")
            for m in history
        )
        rows.append([e(sensor_id), e(descriptions.get(sensor_id) or ""),
                     e(names.get(now.location_id or "", now.location_id or "unmounted")),
                     past])  # fmt: skip
    out = table(("Sensor", "Description", "Mounted at", "Mount history"), rows,
                empty="No sensor mounted yet.")  # fmt: skip
    if unmounted:
        items = "".join(f"<li>{e(s)} (last seen {when(t)})</li>" for s, t in unmounted)
        out += (
            f"<h2>Reporting but not mounted</h2><ul class='admin-unmounted'>{items}</ul>"
            "<p><a href='/ui/discovery'>Mount them in one click, or browse an OPC-UA server"
            " through its gateway</a>.</p>"
        )
    if admin:
        now_utc = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        out += form("Mount a sensor", "/ui/admin/api/save/sensor", [
            Field("sensor_id", "Sensor id", "As the gateway reports it (e.g. fridge-1.t).",
                  required=True),
            Field("location_id", "Location", "Where it is from the time below on; none:"
                  " unmounted.", kind="select",
                  choices=_choices([(x.location_id, x.name) for x in places])),
            Field("mounted_at", "From", "RFC 3339 time the mount takes effect (UTC: Z);"
                  " readings from then on are judged at this location, older ones where the"
                  " sensor was before.", required=True, value=now_utc),
            Field("description", "Description", "What people call it (door probe, ...)."),
        ])  # fmt: skip
    return out


def gateways(found: Sequence[queries.GatewayInfo], site_ids: Sequence[Site], *,
             admin: bool) -> str:  # fmt: skip
    rows = []
    for g in found:
        outbox = (
            "not reported" if g.outbox_pending is None
            else f"{g.outbox_pending} waiting, oldest {duration(g.outbox_oldest_age)}"
        )  # fmt: skip
        skew = "—" if g.clock_skew is None else f"{g.clock_skew.total_seconds():+.1f} s"
        cells = [e(g.gateway_id), e(g.site_id or "none"),
                 "disabled" if g.disabled else "enabled", when(g.last_seen),
                 e(g.software_version or "not reported"), e(skew), e(outbox)]  # fmt: skip
        if admin:
            gid = quote(g.gateway_id, safe="")
            cells.append(
                button("Rotate token", f"/ui/admin/api/gateways/{gid}/rotate",
                       confirm="The gateway's current token stops working at once.")
                + ("" if g.disabled else button(
                    "Disable", f"/ui/admin/api/gateways/{gid}/disable",
                    confirm="The gateway's batches will be refused from now on."))
                + form(f"Site of {g.gateway_id}", f"/ui/admin/api/gateways/{gid}/site", [
                    Field("site_id", "Site", "Its next batch is judged against this site.",
                          kind="select", required=True, value=g.site_id or "",
                          choices=_choices([(s.site_id, s.name) for s in site_ids]))],
                    submit="Move", name=f"site-{g.gateway_id}")
            )  # fmt: skip
        rows.append(cells)
    headers = ["Gateway", "Site", "State", "Last seen", "Software", "Clock skew", "Outbox"]
    out = table([*headers, *(["Actions"] if admin else [])], rows, empty="No gateway yet.")
    if admin:
        out += form("Register a gateway", "/ui/admin/api/gateways", [
            Field("gateway_id", "Gateway id", "The agent's COLDTRACE_EDGE_GATEWAY_ID.",
                  required=True),
            Field("site_id", "Site", "It may write only for devices of this site.",
                  kind="select", choices=_choices([(s.site_id, s.name) for s in site_ids])),
        ], submit="Register and show the token")  # fmt: skip
    return out


def streams(found: Sequence[StreamState], *, admin: bool) -> str:
    """Processing streams behind, failing or stalled, with the error; for admins a form to set
    the failing batch aside (``cloud.processing.streams.set_aside``: kept, audited, alerted)."""
    rows = []
    for s in found:
        state = ("STALLED" if s.stalled_since is not None
                 else "failing" if s.failures else "behind")  # fmt: skip
        cells = [e(s.gateway_id), e(str(s.boot_id)), e(state), e(s.pending_batches),
                 e(s.failing_batch_id if s.failing_batch_id is not None else "—"),
                 e(s.failures), e(s.last_error or ""),
                 when(s.stalled_since or s.failing_since)]  # fmt: skip
        if admin and s.failing_batch_id is not None and s.failures:
            gid = quote(s.gateway_id, safe="")
            cells.append(form(
                f"Set batch {s.failing_batch_id} of {s.gateway_id} aside",
                f"/ui/admin/api/streams/{gid}/set-aside", [
                    Field("batch_id", "Batch", "The batch the stream is failing on; its records"
                          " are kept as a quarantined batch and never judged.",
                          value=str(s.failing_batch_id), attrs={"readonly": "readonly"}),
                    Field("boot_id", "Boot", value=str(s.boot_id),
                          attrs={"readonly": "readonly"})],
                submit="Set aside, go on with later batches",
                name=f"set-aside-{s.gateway_id}-{s.boot_id}",
            ))  # fmt: skip
        elif admin:
            cells.append("")
        rows.append(cells)
    headers = ["Gateway", "Boot", "State", "Batches waiting", "Failing batch", "Failures",
               "Last error", "Since"]  # fmt: skip
    return "<h2>Processing</h2>" + table(
        [*headers, *(["Actions"] if admin else [])],
        rows,
        empty="Every gateway's batches are processed.",
    )


def doors(
    readers: Sequence[queries.ReaderInfo], sources: Sequence[queries.ReaderSource] | None,
    configured: Sequence[queries.DoorInfo] | None, seen: Sequence[tuple[str, str, int, datetime]],
    gateway_ids: Sequence[str], *, admin: bool,
) -> str:  # fmt: skip
    out = "<h2>Readers the gateways read</h2>" + table(
        ("Gateway", "Reader", "Host", "Port", "Antennas"),
        [[e(r.gateway_id), e(r.name), e(r.settings.get("host", "")),
          e(r.settings.get("port", 5084)),
          e(", ".join(map(str, r.settings.get("antennas", [1, 2]))))] for r in sources or ()],
        empty="No RFID reader configured.",
    )  # fmt: skip
    out += "<h2>Readers that reported</h2>" + table(
        ("Reader", "Gateway", "Location", "Last seen", "State"),
        [[e(r.reader_id), e(r.gateway_id or ""), e(r.location_id or "not mounted"),
          when(r.last_seen), e(r.last_state or "")] for r in readers],
        empty="No RFID reader has reported yet.",
    )  # fmt: skip
    out += "<h2>Doors</h2>" + table(
        ("Gateway", "Door", "Reader", "Outside antennas (a pallet seen here first goes in)",
         "Inside antennas (seen here first: goes out)"),
        [[e(d.gateway_id), e(d.door_id), e(d.reader),
          e(", ".join(map(str, d.outside_antennas))),
          e(", ".join(map(str, d.inside_antennas)))] for d in configured or ()],
        empty="No door configured.",
    )  # fmt: skip
    out += "<h2>Passages seen</h2>" + table(
        ("Door", "Direction", "Passages", "Last"),
        [[e(d), e(x), e(n), when(t)] for d, x, n, t in seen],
        empty="No portal passage yet.",
    )
    if admin and sources is not None:
        gateways_ = [(g, g) for g in gateway_ids]
        out += form("Add or change an RFID reader", "/ui/admin/api/readers", [
            Field("gateway_id", "Gateway", "The gateway that reads it (LLRP).", kind="select",
                  required=True, choices=gateways_),
            Field("name", "Reader id", "Its id in tag reads and door settings.", required=True),
            Field("host", "Host", "The reader's address on the gateway's network.",
                  required=True),
            Field("port", "Port", "LLRP, 5084 unless changed.", value="5084"),
            Field("antennas", "Antennas", "The antenna ports in use, e.g. 1, 2, 3, 4.",
                  value="1, 2"),
        ])  # fmt: skip
        out += form("Add or change a door", "/ui/admin/api/doors", [
            Field("gateway_id", "Gateway", kind="select", required=True, choices=gateways_),
            Field("door_id", "Door id", "As receiving and the ledger name the dock door.",
                  required=True),
            Field("reader", "Reader id", "One of the gateway's RFID readers above.",
                  required=True),
            Field("outside_antennas", "Outside antennas", "Facing the yard: a pallet seen here"
                  " first is coming in (e.g. 1, 2).", required=True),
            Field("inside_antennas", "Inside antennas", "Facing the warehouse: seen here first"
                  " means going out (e.g. 3, 4).", required=True),
        ])  # fmt: skip
    return out


def users(found: Sequence[queries.UserInfo], *, admin: bool) -> str:
    rows = []
    for u in found:
        cells = [e(u.name), e(u.role), "enabled" if u.enabled else "disabled"]
        if admin:
            name = quote(u.name, safe="")
            change = form(
                f"Role of {u.name}", f"/ui/admin/api/users/{name}/role",
                [Field("role", "Role", kind="select", required=True, value=u.role,
                       choices=[(r, r) for r in ROLES])],
                submit="Change role", name=f"role-{u.name}",
            )  # fmt: skip
            off = button("Disable", f"/ui/admin/api/users/{name}/disable",
                         confirm=f"{u.name} will be signed out and cannot sign in.")  # fmt: skip
            cells.append(change + (off if u.enabled else ""))
        rows.append(cells)
    out = table(("User", "Role", "State", *(["Actions"] if admin else [])), rows,
                empty="No user.")  # fmt: skip
    if admin:
        out += form("Create a user", "/ui/admin/api/users", [
            Field("name", "User name", required=True,
                  attrs={"pattern": "[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"}),
            Field("role", "Role", "viewer reads; operator acknowledges and moves stock; qa"
                  " releases and rejects; admin sets up.", kind="select", required=True,
                  choices=[(r, r) for r in ROLES]),
        ], submit="Create and show the API token")  # fmt: skip
    return out


def csv_page(*, admin: bool) -> str:
    rows = []
    for name, kind in KINDS.items():
        cells = [e(name), e(", ".join(kind.columns)),
                 f"<a href='/ui/admin/export/{e(name)}' download>{e(name)}s.csv</a>"]  # fmt: skip
        rows.append(cells)
    out = table(("Kind", "Columns", "Export"), rows, empty="")
    if admin:
        options = "".join(f"<option value='{e(k)}'>{e(k)}</option>" for k in KINDS)
        out += (
            "<form class='admin-csv'><fieldset><legend>Import a CSV file</legend>"
            f"<label class='admin-field'><span class='admin-label'>Kind</span>"
            f"<select name='kind'>{options}</select></label>"
            "<label class='admin-field'><span class='admin-label'>File</span>"
            "<input type='file' name='file' accept='.csv,text/csv' required>"
            "<small class='admin-help'>UTF-8, first line naming the columns; an empty cell"
            " means no value.</small></label>"
            "<label class='admin-field'><span class='admin-label'>Reason for the change</span>"
            "<input type='text' name='reason' required maxlength='500'></label>"
            "<button type='submit' name='mode' value='check'>Check (dry run)</button>"
            "<button type='submit' name='mode' value='apply'>Apply</button>"
            "<p class='admin-result' role='status' aria-live='polite'></p>"
            "<div class='admin-report'></div></fieldset></form>"
        )
    return out


def audit(found: Sequence[queries.AuditEntry]) -> str:
    return table(
        ("When", "Who", "What", "Subject", "Reason", "Before", "After"),
        [[when(a.at), e(a.actor), e(a.action), e(a.subject), e(a.reason or ""),
          f"<code>{e(a.detail.get('before'))}</code>",
          f"<code>{e(a.detail.get('after'))}</code>"] for a in found],
        empty="Nothing recorded yet.",
    )  # fmt: skip
