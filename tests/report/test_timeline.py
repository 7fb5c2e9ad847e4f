"""Concurrency chart geometry."""

from __future__ import annotations

from flowpipe.report.timeline import CHART_WIDTH, timeline_charts
from flowpipe.store.runlog import RunLog


def _run(
    window: list[tuple[float, str, int]],
    inflight: list[tuple[float, str, int]],
    wall: float | None = 10.0,
) -> RunLog:
    return RunLog(
        backend_kind="sim",
        base_url=None,
        started_at=None,
        finished_at=None,
        wall_seconds=wall,
        outcome="done",
        exit_code=0,
        summary={},
        nodes={},
        window=tuple(window),
        inflight=tuple(inflight),
        rejections=((5.0, "a", 429),),
    )


def test_one_chart_per_account_with_step_paths() -> None:
    charts = timeline_charts(_run([(0, "a", 3), (5, "a", 6), (0, "b", 3)], [(1, "a", 2)]))
    assert [c.account for c in charts] == ["a", "b"]
    a = charts[0]
    assert a.window_path.startswith(f"M{a.plot_left}.0 ")
    assert a.window_path.count("V") == 1 and a.window_path.endswith(f"H{a.plot_right}.0")
    assert a.peak_window == 6 and a.peak_inflight == 2
    assert a.rejections == (((a.plot_left + a.plot_right) / 2, 429),)
    assert charts[1].inflight_path == "" and charts[1].rejections == ()


def test_dense_traces_are_thinned_to_pixel_columns() -> None:
    inflight = [(i / 1000, "a", i % 7) for i in range(10_000)]
    chart = timeline_charts(_run([], inflight))[0]
    assert chart.inflight_path.count("H") <= CHART_WIDTH + 1
    assert chart.peak_inflight == 6


def test_no_trace_no_chart() -> None:
    assert timeline_charts(_run([], [])) == ()


def test_ticks_cover_the_run() -> None:
    chart = timeline_charts(_run([(0, "a", 3)], [], wall=125.0))[0]
    labels = [label for _, label in chart.x_ticks]
    assert labels[0] == "0s" and labels[-1] == "2m"
    assert [label for _, label in chart.y_ticks] == ["0", "5", "10", "15", "20"]
