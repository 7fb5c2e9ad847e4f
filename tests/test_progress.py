"""The terminal displays read the same events: counts, windows, retries, failures."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

import flowpipe
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
from flowpipe.live import LiveProgress
from flowpipe.progress import PlainProgress, Tally

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
    assert "x@example.com  window  4" in text
    assert "retries 1" in text
    assert "failed c: moderated" in text
    assert "stopping: interrupted" in text


def _final(live: LiveProgress) -> str:
    console = Console(file=io.StringIO(), force_terminal=False, width=150, record=True)
    console.print(live.render())
    return console.export_text()


def test_live_progress_has_a_bar_per_step_and_the_last_events_with_their_reasons() -> None:
    live = LiveProgress(Console(file=io.StringIO()), clock=lambda: 10.0)
    for event in [
        RunStarted(0.0, 7, "sim", steps=(("hero", 1), ("grid", 6))),
        NodeStarted(0.1, "hero", "a@x.io", 1, "imagen-4", "changed",
                    ('prompt: "…soft light" → "…hard light"',)),
        NodeDone(0.2, "hero", "a@x.io", 0.1, 1, "imagen-4"),
        NodeCached(0.2, "grid[r=landscape]"),
        NodeStarted(0.3, "grid[r=portrait]", "a@x.io", 1, "nano-banana", "changed",
                    ("upstream image changed: context hero.0 (aaa → bbb)",)),
        NodeStarted(0.3, "grid[r=square]", "a@x.io", 1, "nano-banana", "new",
                    ("not in the cache",)),
        NodeRetried(0.4, "grid[r=square]", "a@x.io", ErrorInfo("CapacityError", "busy", 429),
                    6.2, "retry"),
        NodeFailed(0.5, "grid[r=wide]", ErrorInfo("ModerationError", "moderated", 500)),
        WindowChanged(0.5, "a@x.io", 3, "start"),
        WindowChanged(0.6, "a@x.io", 6, "probe"),
    ]:
        live.handle(event)
    live.pause("b@x.io", None, 60.0, "USER_REQUESTS_THROTTLED")
    text = _final(live)
    lines = text.splitlines()
    hero = next(line for line in lines if line.startswith("hero "))
    assert "█" in hero and "1/1" in hero and "done 1" in hero
    grid = next(line for line in lines if line.startswith("grid "))
    assert "2/6" in grid and "cached 1" in grid and "running 1" in grid and "failed 1" in grid
    assert "▒" in grid and "─" in grid  # one running, three waiting
    counts = next(line for line in lines if line.startswith("done "))
    assert "running 1  queued 3  failed 1" in counts and "review 0" in counts  # not "waiting"
    assert "a@x.io  window  6" in text and "▄█" in text  # the window's trace: 3 then 6
    assert "paused  b@x.io for 1m00s: USER_REQUESTS_THROTTLED" in text
    assert "→ hero to a@x.io: changed: prompt" in text
    assert "→ grid[r=portrait] to a@x.io: changed: upstream image changed" in text
    assert "↻ grid[r=square]: retry after 429 (in 6.2s)" in text
    assert "✗ grid[r=wide]: ModerationError: moderated" in text
    live.resume("b@x.io", None)
    assert "paused  " not in _final(live)


def test_the_tally_forgets_why_a_node_ran_once_it_ended() -> None:
    stream = io.StringIO()
    sink = PlainProgress(stream)
    for event in [
        RunStarted(0.0, 2, "sim"),
        NodeStarted(0.1, "a", "x@example.com", 1, "imagen-4", "new", ("not in the cache",)),
        NodeStarted(0.1, "b", "x@example.com", 1, "imagen-4", "changed", ("prompt",)),
    ]:
        sink.handle(event)
    assert set(sink.tally.reasons) == {"a", "b"}
    sink.handle(NodeDone(0.5, "a", "x@example.com", 0.4, 1, "imagen-4"))
    sink.handle(NodeFailed(0.6, "b", ErrorInfo("ModerationError", "moderated", 500)))
    assert sink.tally.reasons == {}  # nothing kept per node once it ended
    lines = stream.getvalue().splitlines()
    assert lines[-2].endswith("done a in 0.4s (imagen-4): new: not in the cache")
    assert lines[-1].endswith("failed b: ModerationError: moderated [changed: prompt]")


BRACKETS = """
version: 1
name: brackets
steps:
  s:
    matrix: {k: ["x[/]", "[angle=side]"]}
    prompt: "a forbidden thing {{ k }}"
    count: 1
"""


def test_live_progress_prints_node_ids_and_errors_as_written(tmp_path: Path) -> None:
    """Matrix values are the recipe's words: ``[/]`` must not end markup that is not
    there (rich raised MarkupError inside the sink) and ``[angle=side]`` must not vanish
    as a style tag. The simulator refuses the word "forbidden", so both nodes fail."""
    recipe = tmp_path / "brackets.yaml"
    recipe.write_text(BRACKETS.lstrip(), encoding="utf-8")
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=200, record=True)
    with LiveProgress(console) as live:
        result = flowpipe.run(recipe, out=tmp_path / "out", progress=live, backend="sim",
                              time_scale=0.001, cache_dir=tmp_path / "cache", report=False,
                              lock=False)
    assert {nid: node.state for nid, node in result.nodes.items()} == {
        "s[k=x[/]]": "failed", "s[k=[angle=side]]": "failed"}
    text = console.export_text()
    assert "failed s[k=x[/]]: " in text
    assert "failed s[k=[angle=side]]: " in text
