"""The concurrency chart: window and in-flight requests over time, per account.

Geometry is computed here and the template only draws it, so the report needs no
charting script. Long runs are thinned to one point per pixel column (keeping the
highest value there) so 2,000 nodes do not make a megabyte of path data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowpipe.store.runlog import RunLog

__all__ = ["CHART_HEIGHT", "CHART_WIDTH", "AccountChart", "timeline_charts"]

CHART_WIDTH = 880
CHART_HEIGHT = 150
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 12, 10, 22
_NICE_SECONDS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True, slots=True)
class AccountChart:
    """SVG paths and ticks for one account's chart, in viewBox units."""

    account: str
    window_path: str
    inflight_path: str
    inflight_area: str
    rejections: tuple[tuple[float, int], ...]
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    peak_window: int
    peak_inflight: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int


def _fmt_seconds(t: float) -> str:
    if t >= 60 and t % 60 == 0:
        return f"{int(t // 60)}m"
    if t >= 60:
        return f"{int(t // 60)}m{int(t % 60):02d}"
    return f"{t:g}s"


def _thin(points: Sequence[tuple[float, int]]) -> list[tuple[float, int]]:
    """One point per pixel column, keeping the column's highest value."""
    thinned: list[tuple[float, int]] = []
    for x, v in points:
        if thinned and round(thinned[-1][0]) == round(x):
            thinned[-1] = (thinned[-1][0], max(thinned[-1][1], v))
        else:
            thinned.append((x, v))
    return thinned


def _step_path(points: Sequence[tuple[float, float]], x_end: float) -> str:
    if not points:
        return ""
    x0, y0 = points[0]
    parts = [f"M{x0:.1f} {y0:.1f}"]
    for x, y in points[1:]:
        parts.append(f"H{x:.1f}V{y:.1f}")
    parts.append(f"H{x_end:.1f}")
    return "".join(parts)


def timeline_charts(run: RunLog) -> tuple[AccountChart, ...]:
    """One chart per account that appears in the window or in-flight trace."""
    accounts: list[str] = []
    for _, account, _ in (*run.window, *run.inflight):
        if account not in accounts:
            accounts.append(account)
    if not accounts:
        return ()
    times = [t for t, _, _ in (*run.window, *run.inflight, *run.rejections)]
    t_max = max([run.wall_seconds or 0.0, *times, 1e-6])
    values = [v for _, _, v in (*run.window, *run.inflight)]
    y_max = max(20, *values)
    left, right = _LEFT, CHART_WIDTH - _RIGHT
    top, bottom = _TOP, CHART_HEIGHT - _BOTTOM

    def sx(t: float) -> float:
        return left + (right - left) * max(0.0, t) / t_max

    def sy(v: float) -> float:
        return bottom - (bottom - top) * v / y_max

    step = next((s for s in _NICE_SECONDS if t_max / s <= 8), _NICE_SECONDS[-1])
    x_ticks = tuple(
        (round(sx(i * step), 1), _fmt_seconds(i * step)) for i in range(int(t_max / step) + 1)
    )
    y_step = 5 if y_max <= 40 else 10
    y_ticks = tuple((round(sy(v), 1), str(v)) for v in range(0, y_max + 1, y_step))
    charts = []
    for account in accounts:
        window = _thin([(sx(t), v) for t, a, v in run.window if a == account])
        inflight = _thin([(sx(t), v) for t, a, v in run.inflight if a == account])
        inflight_path = _step_path([(x, sy(v)) for x, v in inflight], right)
        area = f"{inflight_path}V{bottom}H{inflight[0][0]:.1f}Z" if inflight else ""
        charts.append(
            AccountChart(
                account=account,
                window_path=_step_path([(x, sy(v)) for x, v in window], right),
                inflight_path=inflight_path,
                inflight_area=area,
                rejections=tuple(
                    (round(sx(t), 1), v)
                    for t, a, v in run.rejections
                    if a == account and v is not None
                ),
                x_ticks=x_ticks,
                y_ticks=y_ticks,
                peak_window=max((v for _, v in window), default=0),
                peak_inflight=max((v for _, v in inflight), default=0),
                plot_left=left,
                plot_right=right,
                plot_top=top,
                plot_bottom=bottom,
            )
        )
    return tuple(charts)
