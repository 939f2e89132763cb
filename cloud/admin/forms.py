"""Forms of the admin pages: fields with a label and a one-line explanation, rendered as HTML.

A form posts nothing by itself: ``static/admin.js`` sends its fields as JSON, with the
dashboard's anti-forgery header, to the URL in ``data-url`` and shows the answer. Every form
asks for the reason of the change, which goes into the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cloud.web.pages import e


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    help: str = ""
    """One line saying what the value means."""
    kind: str = "text"
    """An HTML input type, or ``select`` (``choices``) or ``checkbox``."""
    required: bool = False
    choices: Sequence[tuple[str, str]] = ()
    """``(value, label)``; a select with ``required=False`` offers "none" first."""
    placeholder: str = ""
    value: str = ""
    attrs: dict[str, str] = field(default_factory=dict)


def _input(f: Field) -> str:
    need = " required" if f.required else ""
    extra = "".join(f" {e(k)}='{e(v)}'" for k, v in f.attrs.items())
    if f.kind == "select":
        options = "" if f.required else "<option value=''>— none —</option>"
        options += "".join(
            f"<option value='{e(v)}'{' selected' if v == f.value else ''}>{e(label)}</option>"
            for v, label in f.choices
        )
        return f"<select name='{e(f.name)}'{need}{extra}>{options}</select>"
    if f.kind == "checkbox":
        checked = " checked" if f.value == "true" else ""
        return f"<input type='checkbox' name='{e(f.name)}' value='true'{checked}{extra}>"
    hint = f" placeholder='{e(f.placeholder)}'" if f.placeholder else ""
    return f"<input type='{e(f.kind)}' name='{e(f.name)}' value='{e(f.value)}'{hint}{need}{extra}>"


def form(
    title: str, url: str, fields: Sequence[Field], *, submit: str = "Save", name: str = ""
) -> str:
    """A form that ``admin.js`` posts as ``{"row": {...fields}, "reason": ...}`` to ``url``."""
    rows = "".join(
        f"<label class='admin-field'><span class='admin-label'>{e(f.label)}</span>{_input(f)}"
        + (f"<small class='admin-help'>{e(f.help)}</small>" if f.help else "")
        + "</label>"
        for f in fields
    )
    reason = (
        "<label class='admin-field'><span class='admin-label'>Reason for the change</span>"
        "<input type='text' name='reason' required maxlength='500'"
        " placeholder='e.g. commissioning of ward 4'>"
        "<small class='admin-help'>Kept in the audit trail with the values before and after."
        "</small></label>"
    )
    return (
        f"<form class='admin-form' data-url='{e(url)}' data-name='{e(name or title)}'>"
        f"<fieldset><legend>{e(title)}</legend>{rows}{reason}"
        f"<button type='submit'>{e(submit)}</button>"
        "<p class='admin-result' role='status' aria-live='polite'></p></fieldset></form>"
    )


def button(label: str, url: str, *, confirm: str = "") -> str:
    """A one-click action (rotate, disable) that still asks for a reason."""
    ask = f" data-confirm='{e(confirm)}'" if confirm else ""
    return (
        f"<form class='admin-form admin-inline' data-url='{e(url)}'{ask}>"
        "<input type='text' name='reason' required maxlength='500' placeholder='reason'>"
        f"<button type='submit'>{e(label)}</button>"
        "<span class='admin-result' role='status' aria-live='polite'></span></form>"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str) -> str:
    """A table of already escaped cells."""
    if not rows:
        return f"<p class='admin-empty'>{e(empty)}</p>"
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='admin-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
