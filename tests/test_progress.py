"""The terminal displays read the same events: counts, windows, retries, failures."""

from __future__ import annotations

import io

from rich.console import Console

from flowpipe.events import (
    ErrorInfo,
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeRetried,
    NodeSkipped,
    NodeStarted,
    RunStarted,
    RunStopping,
    WindowChanged,
)
from flowpipe.progress import LiveProgress, PlainProgress, Tally

EVENTS = [
    RunStarted(0.0, 5, "sim"),
    NodeCached(0.1, "hero"),
    NodeStarted(0.2, "a", "x@example.com", 1, "imagen-4"),
    NodeStarted(0.2, "b", "x@example.com", 1, "imagen-4"),
    WindowChanged(0.3, "x@example.com", 4, "probe"),
    NodeRetried(0.4, "b", "x@example.com", ErrorInfo("CapacityError", "busy", 429), 6.0, "retry"),
    NodeDone(0.5, "a", "x@example.com", 0.3, 1, "imagen-4"),
    NodeFailed(0.6, "c", ErrorInfo("ModerationError", "moderated", 500, hint="reword it")),
    NodeSkipped(0.6, "d", "upstream node 'c' failed"),
]


def test_tally_counts_every_state() -> None:
    tally = Tally()
    for event in EVENTS:
        tally.handle(event)
    assert (tally.total, tally.done, tally.cached, tally.failed, tally.skipped) == (5, 2, 1, 1, 1)
    assert tally.retries == 1
    assert tally.running == set()  # a finished and b went back to waiting
    assert tally.windows == {"x@example.com": 4}
    assert tally.finished == 4


def test_plain_progress_prints_one_line_per_event_that_matters() -> None:
    stream = io.StringIO()
    sink = PlainProgress(stream)
    for event in EVENTS:
        sink.handle(event)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[0/5] run: 5 nodes on the sim backend"
    assert "[1/5] cached hero" in lines
    assert any("retry b: HTTP 429 CapacityError (again in 6.0s)" in line for line in lines)
    assert any(line.endswith("failed c: ModerationError: moderated (reword it)") for line in lines)
    assert lines[-1] == "[4/5] skipped d: upstream node 'c' failed"


def test_live_progress_shows_counts_windows_and_stop_reason() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=140, record=True)
    with LiveProgress(console) as live:
        for event in EVENTS:
            live.handle(event)
        live.handle(RunStopping(0.7, "interrupted", None))
    text = console.export_text()
    assert "4/5 nodes" in text
    assert "x@example.com: 4" in text
    assert "retries 1" in text
    assert "failed c: moderated" in text
    assert "stopping: interrupted" in text
