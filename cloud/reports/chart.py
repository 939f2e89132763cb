"""A printable temperature chart, drawn as plain SVG from the data (no charting library).

The dashboard's zoomable chart is uPlot in the browser; a PDF needs a static picture, so this
draws the same things from the same ``History``: each sensor's mean as a line, its min-max
envelope as a band (rollups), the alert and action limits, excursions shaded, gaps hatched
(silence never reads as "in range"), and the periods a sensor's calibration was overdue as a
strip under the plot.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> line = Line("s1", [(t0 + timedelta(hours=h), 5.0 + h % 2, 4.0, 7.0) for h in range(5)])
>>> svg = chart([line], start=t0, end=t0 + timedelta(hours=4),
...             limits=Limits(2.0, 8.0, 3.0, 7.0), zone="UTC")
>>> svg.startswith("<svg") and svg.count('class="mean"')
1
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

WIDTH, HEIGHT = 1000.0, 360.0
LEFT, RIGHT, TOP, BOTTOM = 48.0, 12.0, 12.0, 52.0
COLOURS = ("#1f5fa8", "#2e7d32", "#6a1b9a", "#8d6e00", "#00838f", "#ad1457")

Point = tuple[datetime, float | None, float | None, float | None]
"""time, mean, min, max (None: a gap marker)."""


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Limits:
    action_low: float | None
    action_high: float | None
    alert_low: float | None
    alert_high: float | None

    def values(self) -> list[float]:
        return [
            v
            for v in (self.action_low, self.action_high, self.alert_low, self.alert_high)
            if v is not None
        ]


@dataclass(frozen=True)
class Spans:
    """Intervals to mark: excursions (level in the label), gaps, overdue calibration."""

    excursions: Sequence[tuple[datetime, datetime, str]] = ()
    gaps: Sequence[tuple[datetime, datetime]] = ()
    overdue: Sequence[tuple[datetime, datetime]] = field(default_factory=list)


@dataclass(frozen=True)
class _Frame:
    t0: float
    t1: float
    v0: float
    v1: float

    def x(self, t: datetime) -> float:
        span = (self.t1 - self.t0) or 1.0
        frac = min(max((t.timestamp() - self.t0) / span, 0.0), 1.0)
        return LEFT + frac * (WIDTH - LEFT - RIGHT)

    def y(self, v: float) -> float:
        span = (self.v1 - self.v0) or 1.0
        return TOP + (self.v1 - v) / span * (HEIGHT - TOP - BOTTOM)


def _frame(lines: Sequence[Line], limits: Limits, start: datetime, end: datetime) -> _Frame:
    values = [v for ln in lines for p in ln.points for v in p[1:] if v is not None]
    values += limits.values()
    lo, hi = (min(values), max(values)) if values else (0.0, 10.0)
    margin = max((hi - lo) * 0.08, 0.5)
    return _Frame(start.timestamp(), end.timestamp(), lo - margin, hi + margin)


def _runs(points: Sequence[Point]) -> list[list[Point]]:
    runs: list[list[Point]] = [[]]
    for p in points:
        if p[1] is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(p)
    return [r for r in runs if r]


def _line(f: _Frame, line: Line, colour: str) -> str:
    out = []
    for run in _runs(line.points):
        lows = [(f.x(p[0]), f.y(p[2] if p[2] is not None else p[1] or 0.0)) for p in run]
        highs = [(f.x(p[0]), f.y(p[3] if p[3] is not None else p[1] or 0.0)) for p in run]
        if any(p[2] != p[3] for p in run):
            ring = highs + lows[::-1]
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in ring)
            out.append(f'<polygon points="{coords}" fill="{colour}" fill-opacity="0.15"/>')
        coords = " ".join(f"{f.x(p[0]):.1f},{f.y(p[1] or 0.0):.1f}" for p in run)
        if len(run) == 1:
            x, y = coords.split(",")
            out.append(f'<circle cx="{x}" cy="{y}" r="1.5" fill="{colour}"/>')
        else:
            out.append(
                f'<polyline class="mean" points="{coords}" fill="none" stroke="{colour}"'
                ' stroke-width="1.2"/>'
            )
    return "".join(out)


def _limit_lines(f: _Frame, limits: Limits) -> str:
    out = []
    for value, colour, dash in (
        (limits.action_low, "#c62828", "6,3"),
        (limits.action_high, "#c62828", "6,3"),
        (limits.alert_low, "#ef6c00", "2,3"),
        (limits.alert_high, "#ef6c00", "2,3"),
    ):
        if value is None:
            continue
        y = f.y(value)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}"'
            f' stroke-dasharray="{dash}" stroke-width="1"/>'
        )
    return "".join(out)


def _rects(f: _Frame, spans: Spans) -> str:
    out = []
    plot_h = HEIGHT - TOP - BOTTOM
    for a, b, level in spans.excursions:
        colour = "#c62828" if level == "action" else "#ef6c00"
        out.append(
            f'<rect class="excursion" x="{f.x(a):.1f}" y="{TOP}"'
            f' width="{max(f.x(b) - f.x(a), 1):.1f}" height="{plot_h}" fill="{colour}"'
            ' fill-opacity="0.12"/>'
        )
    for a, b in spans.gaps:
        out.append(
            f'<rect class="gap" x="{f.x(a):.1f}" y="{TOP}"'
            f' width="{max(f.x(b) - f.x(a), 1):.1f}" height="{plot_h}" fill="url(#hatch)"/>'
        )
    for a, b in spans.overdue:
        out.append(
            f'<rect class="overdue" x="{f.x(a):.1f}" y="{HEIGHT - BOTTOM + 2}"'
            f' width="{max(f.x(b) - f.x(a), 1):.1f}" height="5" fill="#6a1b9a"/>'
        )
    return "".join(out)


def _ticks(step: float, lo: float, hi: float) -> list[float]:
    first = int(lo // step) + 1
    return [i * step for i in range(first, int(hi // step) + 1)]


def _axes(f: _Frame, start: datetime, end: datetime, zone: ZoneInfo) -> str:
    out = [
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}"'
        f' height="{HEIGHT - TOP - BOTTOM}" fill="none" stroke="#888" stroke-width="0.8"/>'
    ]
    span = f.v1 - f.v0
    step = next(s for s in (0.5, 1, 2, 5, 10, 20, 50) if span / s <= 10)
    for v in _ticks(step, f.v0, f.v1):
        y = f.y(v)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"'
            ' stroke-width="0.5"/>'
            f'<text x="{LEFT - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{v:g}</text>'
        )
    total = end - start
    hours = next(
        h for h in (1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720) if total / timedelta(hours=h) <= 12
    )
    local_start = start.astimezone(zone)
    tick = local_start.replace(minute=0, second=0, microsecond=0)
    if hours >= 24:
        tick = tick.replace(hour=0)
    fmt = "%d %b" if hours >= 24 else "%d %b %H:%M"
    while tick < end:
        x = f.x(tick)
        if tick >= start and x < WIDTH - RIGHT - 24:  # no label cut at the right edge
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#eee"'
                ' stroke-width="0.5"/>'
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 20}" font-size="10"'
                f' text-anchor="middle">{tick:{fmt}}</text>'
            )
        tick = (tick + timedelta(hours=hours)).astimezone(zone)
    return "".join(out)


def _legend(lines: Sequence[Line]) -> str:
    out = []
    x = LEFT
    y = HEIGHT - 10
    for i, line in enumerate(lines):
        colour = COLOURS[i % len(COLOURS)]
        label = html.escape(line.label)
        out.append(
            f'<rect x="{x:.0f}" y="{y - 8}" width="12" height="3" fill="{colour}"/>'
            f'<text x="{x + 16:.0f}" y="{y - 4}" font-size="10">{label}</text>'
        )
        x += 24 + 6 * len(line.label)
    out.append(
        f'<text x="{WIDTH - RIGHT}" y="{y - 4}" font-size="9" text-anchor="end">'
        "dashed red: action limits · dotted orange: alert limits · shaded: excursions ·"
        " hatched: no data · purple strip: calibration overdue</text>"
    )
    return "".join(out)


def chart(
    lines: Sequence[Line],
    *,
    start: datetime,
    end: datetime,
    limits: Limits,
    zone: str,
    spans: Spans | None = None,
) -> str:
    """The chart as an SVG element, times shown in the site's zone ``zone``."""
    f = _frame(lines, limits, start, end)
    hatch = (
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#999"'
        ' stroke-width="1"/></pattern></defs>'
    )
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}"'
        ' width="100%" font-family="sans-serif" role="img" aria-label="temperature chart">',
        hatch,
        _axes(f, start, end, ZoneInfo(zone)),
        _rects(f, spans or Spans()),
        _limit_lines(f, limits),
        *(_line(f, ln, COLOURS[i % len(COLOURS)]) for i, ln in enumerate(lines)),
        _legend(lines),
        "</svg>",
    ]
    return "".join(body)
