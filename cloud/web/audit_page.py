"""``/ui/audit``: the audit trail for QA and admins, filtered by who, what, when and object,
with the same filter exported as CSV (``/ui/audit.csv``).

Dates are whole days in UTC (``from`` inclusive, ``to`` inclusive): the page's inputs are dates,
the stored times are UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from cloud.api.deps import Pool
from cloud.api.users import csv_download, pdf_download
from cloud.audit import trail
from cloud.audit.trail import AuditFilter, AuditRow
from cloud.auth.model import Role
from cloud.web.pages import e, frame, when
from cloud.web.session import MaybeUser, SessionUser

PAGE_ROWS = 200
Text = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


def _day(value: date | None, *, after: bool = False) -> datetime | None:
    if value is None:
        return None
    start = datetime.combine(value, time(0), tzinfo=UTC)
    return start + timedelta(days=1) if after else start


def page_filter(
    *,
    actor: Text = None,
    action: Text = None,
    subject: Text = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> AuditFilter:
    if start is not None and end is not None and end < start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'to' is before 'from'")
    return AuditFilter(
        actor=actor or None, action=action or None, subject=subject or None,
        since=_day(start), until=_day(end, after=True),
    )  # fmt: skip


PageFilter = Annotated[AuditFilter, Depends(page_filter)]


def _query(f: AuditFilter) -> dict[str, str]:
    out = {"actor": f.actor, "action": f.action, "subject": f.subject}
    found = {k: v for k, v in out.items() if v}
    if f.since is not None:
        found["from"] = f.since.date().isoformat()
    if f.until is not None:
        found["to"] = (f.until - timedelta(days=1)).date().isoformat()
    return found


def _input(name: str, label: str, value: str | None, kind: str = "text") -> str:
    return (
        f"<label>{e(label)} <input type='{kind}' name='{name}' value='{e(value or '')}'"
        " maxlength='128'></label>"
    )


def audit_page(rows: Sequence[AuditRow], f: AuditFilter, *, user: str) -> str:
    q = _query(f)
    form = (
        "<form method='get' action='/ui/audit' class='audit-filter'>"
        + _input("actor", "Who", f.actor)
        + _input("action", "What (e.g. account.*)", f.action)
        + _input("subject", "Object (e.g. lot:12, lot:*)", f.subject)
        + _input("from", "From (UTC)", q.get("from"), "date")
        + _input("to", "To (UTC)", q.get("to"), "date")
        + "<button>Filter</button></form>"
    )
    export = (
        f"<p><a href='/ui/audit.csv?{e(urlencode(q))}' download>Export CSV</a> ·"
        f" <a href='/ui/audit.pdf?{e(urlencode(q))}' download>Export PDF</a></p>"
    )
    body_rows = "".join(
        f"<tr data-audit='{r.audit_id}'><td>{when(r.at)}</td><td>{e(r.actor)}</td>"
        f"<td>{e(r.action)}</td><td>{e(r.subject)}</td><td>{e(r.reason or '')}</td>"
        f"<td><small>{e(_detail(r))}</small></td></tr>"
        for r in rows
    )
    table = (
        "<table class='audit'><thead><tr><th>When</th><th>Who</th><th>What</th><th>Object</th>"
        f"<th>Why</th><th>Details</th></tr></thead><tbody>{body_rows}</tbody></table>"
        if rows
        else "<p class='empty'>No entry matches.</p>"
    )
    more = (
        f"<p>Showing the newest {PAGE_ROWS}; narrow the filter or export for all.</p>"
        if len(rows) >= PAGE_ROWS
        else ""
    )
    body = f"<section><h2>Audit trail</h2>{form}{export}{more}{table}</section>"
    return frame("Audit trail", body, user=user)


def _detail(r: AuditRow) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(r.detail.items()))


def add_audit_routes(router: APIRouter) -> None:
    @router.get("/audit", response_class=HTMLResponse)
    async def audit(pool: Pool, user: MaybeUser, f: PageFilter) -> Response:
        if user is None:
            return RedirectResponse("/ui/login", status_code=status.HTTP_303_SEE_OTHER)
        _auditor(user.allows(Role.QA))
        async with pool.connection() as conn:
            rows = await trail.entries(conn, f, limit=PAGE_ROWS)
        return HTMLResponse(audit_page(rows, f, user=user.name))

    @router.get("/audit.csv")
    async def audit_csv(pool: Pool, user: SessionUser, f: PageFilter) -> Response:
        _auditor(user.allows(Role.QA))
        return await csv_download(pool, f)

    @router.get("/audit.pdf")
    async def audit_pdf(pool: Pool, user: SessionUser, f: PageFilter) -> Response:
        _auditor(user.allows(Role.QA))
        return await pdf_download(pool, f, user.name)


def _auditor(allowed: bool) -> None:
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "role qa required")
