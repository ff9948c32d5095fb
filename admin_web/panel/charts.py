"""Bar charts drawn on the server as SVG (no script, no CDN): the template draws the
rectangles, the axis and the numbers this module lays out. The SVG keeps its aspect
(no stretching: day labels stay readable on a phone), each bar carries its value, the
value axis its zero and its top, and the days are Jakarta (WIB) days like every other
date in the panel."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

WIDTH = 420
HEIGHT = 190
LEFT = 34  # the value axis' numbers
RIGHT = 14  # the last day's label is centred under its bar: room for its half
TOP = 16  # room for the tallest bar's value
LABEL_SPACE = 20  # under the bars, for the day labels


@dataclasses.dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    title: str  # the tooltip: label and value in words
    show_label: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Tick:
    y: float
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    ticks: list[Tick]
    width: int
    height: int
    left: int
    peak: int
    total: int
    baseline: float
    empty: bool


def last_days(today: dt.date, days: int) -> list[str]:
    """The ``days`` ISO dates ending with ``today``."""
    return [(today - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def _short(value: int) -> str:
    """A value as the axis writes it: 950, 1,2k, 3,4jt (Indonesian style)."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}".replace(".", ",").replace(",0", "") + "jt"
    if value >= 10_000:
        return f"{value / 1_000:.0f}k"
    if value >= 1_000:
        return f"{value / 1_000:.1f}".replace(".", ",").replace(",0", "") + "k"
    return str(value)


def bar_chart(
    days: list[str], values: Iterable[tuple[str, int]], *, title: str = "{day}: {value}"
) -> Chart:
    """One bar per day (missing days are zero), scaled to the tallest."""
    by_day = dict(values)
    series = [(day, int(by_day.get(day, 0))) for day in days]
    peak = max((v for _, v in series), default=0)
    baseline = HEIGHT - LABEL_SPACE
    plot = baseline - TOP
    slot = (WIDTH - LEFT - RIGHT) / max(len(series), 1)
    step = 1 if len(series) <= 7 else 2
    bars = []
    for i, (day, value) in enumerate(series):
        h = 0.0 if peak == 0 else max(1.0, plot * value / peak) if value else 0.0
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.15, 1),
                y=round(baseline - h, 1),
                width=round(slot * 0.7, 1),
                height=round(h, 1),
                label=day[8:10] + "/" + day[5:7],
                value=value,
                title=title.format(day=day, value=value),
                # every other day, counted back from today (today always has its label)
                show_label=(len(series) - 1 - i) % step == 0,
            )
        )
    ticks = [Tick(baseline, "0")]
    if peak:
        ticks.append(Tick(float(TOP), _short(peak)))
    total = sum(v for _, v in series)
    return Chart(bars, ticks, WIDTH, HEIGHT, LEFT, peak, total, baseline, peak == 0)
