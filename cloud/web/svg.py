"""Inline SVG sparklines drawn on the server (the zoomable charts are uPlot: static/charts.js).

Pure functions from numbers to SVG text, so the overview needs no charting library and each can
be tested without a browser. Gaps (``None``) break the line instead of being interpolated: a
silent sensor must not look like a steady one.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> points = [(t0 + timedelta(hours=h), v) for h, v in enumerate([4.0, 5.0, None, 6.0, 6.5])]
>>> svg = sparkline(points, low=2.0, high=8.0)
>>> svg.count("<polyline")  # the gap splits the line in two
2
>>> [t.split(">")[1] for t in svg.split("<text")[1:]]  # its scale: top and bottom
['8.5°</text', '1.5°</text']
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

Point = tuple[datetime, float | None]


@dataclass(frozen=True)
class _Frame:
    """Maps times and values to pixel coordinates inside a ``width`` × ``height`` box."""

    t0: float
    t1: float
    v0: float
    v1: float
    width: float
    height: float
    pad: float

    def x(self, t: datetime) -> float:
        span = (self.t1 - self.t0) or 1.0
        return self.pad + (t.timestamp() - self.t0) / span * (self.width - 2 * self.pad)

    def y(self, v: float) -> float:
        span = (self.v1 - self.v0) or 1.0
        return self.height - self.pad - (v - self.v0) / span * (self.height - 2 * self.pad)


def _frame(
    points: Sequence[Point], limits: Sequence[float | None], width: float, height: float
) -> _Frame | None:
    values = [v for _, v in points if v is not None] + [v for v in limits if v is not None]
    if not points or not values:
        return None
    lo, hi = min(values), max(values)
    margin = max((hi - lo) * 0.08, 0.5)
    return _Frame(
        points[0][0].timestamp(),
        points[-1][0].timestamp(),
        lo - margin,
        hi + margin,
        width,
        height,
        pad=2.0,
    )


def _runs(points: Sequence[Point]) -> list[list[tuple[datetime, float]]]:
    """Consecutive known points; a ``None`` ends a run."""
    runs: list[list[tuple[datetime, float]]] = [[]]
    for t, v in points:
        if v is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((t, v))
    return [r for r in runs if r]


def _polylines(frame: _Frame, points: Sequence[Point], css: str) -> str:
    out = []
    for run in _runs(points):
        if len(run) == 1:  # a lone point is still data: draw it as a dot
            t, v = run[0]
            out.append(
                f'<circle class="{css}" cx="{frame.x(t):.1f}" cy="{frame.y(v):.1f}" r="1.5"/>'
            )
            continue
        coords = " ".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in run)
        out.append(f'<polyline class="{css}" points="{coords}"/>')
    return "".join(out)


def _band(frame: _Frame, low: float | None, high: float | None) -> str:
    """The in-range band between ``low`` and ``high`` (open ends reach the frame's edge)."""
    if low is None and high is None:
        return ""
    top = frame.y(high) if high is not None else 0.0
    bottom = frame.y(low) if low is not None else frame.height
    return (
        f'<rect class="band" x="0" y="{max(top, 0):.1f}" width="{frame.width:.0f}"'
        f' height="{max(bottom - max(top, 0), 0):.1f}"/>'
    )


def sparkline(
    points: Sequence[Point],
    *,
    low: float | None,
    high: float | None,
    width: int = 160,
    height: int = 36,
    label: str = "24 h temperature",
) -> str:
    """A small line over the in-range band; an empty box when there is no data."""
    frame = _frame(points, [low, high], width, height)
    head = (
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="{html.escape(label)}">'
    )
    if frame is None:
        return head + '<text x="4" y="22" class="nodata">no data</text></svg>'
    return (
        head
        + _band(frame, low, high)
        + _polylines(frame, points, "line")
        + _scale(frame)
        + ("</svg>")
    )


def _scale(frame: _Frame) -> str:
    """The sparkline's scale: the temperatures at its top and bottom edges, at the left (the
    oldest end; the latest readings at the right stay clear).

    Presentation attributes, not ``style``: the dashboard's CSP allows no inline style.
    """
    out = []
    for value, y in ((frame.v1, 8), (frame.v0, frame.height - 1)):
        out.append(
            f'<text class="scale" x="1" y="{y:.0f}" text-anchor="start"'
            f' font-size="8" fill="#5d6670">{value:.1f}°</text>'
        )
    return "".join(out)
