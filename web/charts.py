"""Small server-rendered SVG line charts: no JavaScript, readable without colour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 640, 160, 48, 24, 10, 10


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    polyline: str
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    points: list[tuple[datetime, float]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM
    right: int = WIDTH - RIGHT
    top: int = TOP


def line_chart(title: str, unit: str, points: list[tuple[datetime, float]],
               low: float | None = None, high: float | None = None,
               start: datetime | None = None, end: datetime | None = None,
               tz: tzinfo = UTC,
               label: Callable[[datetime], str] | None = None) -> Chart:
    """Points scaled into the plot; the axis from `low` to `high` (default: the data's);
    `label` writes a time tick (default `01 Mar 14:05`)."""
    values = [v for _, v in points]
    low = min(values + ([low] if low is not None else [])) if values else (low or 0.0)
    high = max(values + ([high] if high is not None else [])) if values else (high or 1.0)
    if high - low < 1e-9:
        high = low + 1
    t0 = (start or (points[0][0] if points else datetime.now(UTC))).timestamp()
    t1 = (end or (points[-1][0] if points else datetime.now(UTC))).timestamp()
    span = max(t1 - t0, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(ts: float) -> float:
        return LEFT + (ts - t0) / span * plot_w

    def y(value: float) -> float:
        return TOP + (1 - (value - low) / (high - low)) * plot_h

    polyline = " ".join(f"{x(t.timestamp()):.1f},{y(v):.1f}" for t, v in points)
    y_ticks = [(y(low + (high - low) * k / 4), f"{low + (high - low) * k / 4:.0f}")
               for k in range(5)]
    def tick(moment: datetime) -> str:
        return label(moment) if label is not None else moment.strftime("%d %b %H:%M")

    x_ticks = [(x(t0 + span * k / 4), tick(datetime.fromtimestamp(t0 + span * k / 4, tz)))
               for k in range(5)]
    return Chart(title, unit, polyline, y_ticks, x_ticks, points)
