"""The HTML shell every report prints through: A4 pages, a running header, page n of N.

Reports are built as small HTML fragments from escaped text (``esc``, ``table``), like the
dashboard's pages, and wrapped here; ``pdf.print_pdf`` turns the result into a PDF. Times are
shown in the site's zone with its offset, temperatures with two decimals.

>>> page_html("Record", "<p>x</p>", subtitle="Fridge A", generated="2026-01-01 10:00 UTC")[:15]
'<!doctype html>'
>>> temp(4.567), temp(None)
('4.57', '–')
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_CSS = """
@page { size: A4; margin: 18mm 14mm 18mm 14mm;
  @top-left { content: string(title); font-size: 8pt; color: #555; }
  @top-right { content: string(subtitle); font-size: 8pt; color: #555; }
  @bottom-left { content: "coldtrace · generated " string(generated); font-size: 8pt;
                 color: #555; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt;
                  color: #555; } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9pt; color: #111; }
h1 { font-size: 15pt; margin: 0 0 2mm 0; string-set: title content(); }
.subtitle { string-set: subtitle content(); font-size: 10pt; margin: 0 0 4mm 0; }
.generated { string-set: generated content(); display: none; }
h2 { font-size: 11pt; margin: 6mm 0 2mm 0; border-bottom: 0.5pt solid #999; }
h2.newpage { break-before: page; }
table { border-collapse: collapse; width: 100%; margin-bottom: 3mm; }
th, td { border: 0.4pt solid #bbb; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; }
dl.facts { display: grid; grid-template-columns: 45mm auto; margin: 0 0 3mm 0; }
dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
.flag { color: #6a1b9a; font-weight: bold; }
.bad { color: #b71c1c; font-weight: bold; }
.note { color: #555; font-size: 8pt; }
svg { width: 100%; }
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def temp(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def when(t: datetime | None, zone: str) -> str:
    """A time in the site's zone with its offset (``2026-01-01 10:00 +01:00``)."""
    if t is None:
        return "open"
    local = t.astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def duration(d: timedelta) -> str:
    """``2 d 03:15`` or ``03:15`` (hours:minutes); a negative one (a budget overspent) with
    a minus sign.

    >>> duration(timedelta(days=2, minutes=195)), duration(timedelta(minutes=-90))
    ('2 d 03:15', '−01:30')
    """
    sign = "−" if d < timedelta(0) else ""
    minutes = int(abs(d).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hh, mm = divmod(rest, 60)
    return sign + (f"{days} d {hh:02d}:{mm:02d}" if days else f"{hh:02d}:{mm:02d}")


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: frozenset[int] = frozenset()
) -> str:
    """A table of already escaped cells; ``numeric`` column indexes are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        return '<p class="note">none</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def facts(pairs: Sequence[tuple[str, str]]) -> str:
    """A list of label/value pairs; values already escaped."""
    return (
        '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"
    )


def page_html(title: str, body: str, *, subtitle: str, generated: str) -> str:
    """The whole document: the title repeats at the top of every page, the page count below."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><p class="subtitle">{esc(subtitle)}</p>'
        f'<p class="generated">{esc(generated)}</p>{body}</body></html>'
    )
