"""The live display of a run on a terminal: what people expect from rich and Snakemake.

One bar per step (done, cached, running and failed in their colours, the rest
waiting), each account's concurrency window with a trace of its recent values, the
requests in flight and capacity rejections, a row of paused accounts, and the last few
events with their reasons ("changed: prompt", "retry after 429"). It reads the run's
events like every other sink and redraws four times a second, whatever the event rate.
Plain lines for logs and CI are ``flowpipe.progress.PlainProgress``'s job.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from flowpipe.events import (
    AccountPaused,
    AccountResumed,
    Event,
    InflightChanged,
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeRetried,
    NodeSkipped,
    NodeStarted,
    NodeWaiting,
    Rejected,
    RunStarted,
    RunStopping,
    Uploaded,
    WindowChanged,
)
from flowpipe.progress import Tally, fmt_eta
from flowpipe.why import headline

__all__ = ["LiveProgress", "StepCounts"]

BAR_WIDTH = 30
SHOWN_STEPS = 10  # more steps than this: the busiest are shown, the rest counted
SHOWN_EVENTS = 8
TRACE = 24  # window values kept per account for its trace
_SPARK = "▁▂▃▄▅▆▇█"
_COLOURS = {"cached": "cyan", "done": "green", "running": "yellow", "failed": "red",
            "skipped": "magenta", "review": "blue"}


@dataclass(slots=True)
class StepCounts:
    """One step's nodes by state, from the events."""

    total: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    review: int = 0  # waiting for a reviewer's pick
    running: set[str] = field(default_factory=set)

    @property
    def finished(self) -> int:
        return self.done + self.cached + self.failed + self.skipped + self.review

    def bar(self, width: int = BAR_WIDTH) -> Text:
        """Cached, done, running, failed and skipped cells, then what waits."""
        parts = [("cached", self.cached), ("done", self.done), ("running", len(self.running)),
                 ("failed", self.failed), ("skipped", self.skipped), ("review", self.review)]
        total = max(self.total, sum(n for _, n in parts), 1)
        text, used = Text(), 0
        for state, count in parts:
            cells = min(width - used, round(count * width / total) or (1 if count else 0))
            text.append(("▒" if state == "running" else "█") * cells, style=_COLOURS[state])
            used += cells
        text.append("─" * (width - used), style="grey37")
        return text


def _step_of(node: str) -> str:
    """A node id is its step id, then ``[k=v,...]`` for a matrix variant."""
    return node.split("[", 1)[0]


class LiveProgress:
    """A rich panel redrawn in place from the run's events (see the module docstring)."""

    def __init__(self, console: Console | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console or Console(stderr=True)
        self.tally = Tally()
        self.clock = clock
        self.started = clock()
        self.title = ""
        self.steps: dict[str, StepCounts] = {}
        self.inflight: dict[str, int] = {}
        self.rejections: Counter[str] = Counter()
        self.trace: dict[str, deque[int]] = {}
        self.paused: dict[tuple[str, str | None], tuple[float, str]] = {}
        self.events: deque[str] = deque(maxlen=SHOWN_EVENTS)
        self.stopping: str | None = None
        self._live = Live(console=self.console, get_renderable=self.render,
                          refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.refresh()
        self._live.__exit__(*exc)

    # -- paused accounts ------------------------------------------------------------

    def pause(self, account: str, model: str | None, until: float, reason: str) -> None:
        """An account (or one model on it) takes no requests until ``until`` (clock
        seconds since the run started): an ``AccountPaused``."""
        self.paused[(account, model)] = (until, reason)
        what = f"{account} ({model})" if model else account
        self._event(f"⏸ {what} paused: {reason}")

    def resume(self, account: str, model: str | None) -> None:
        """The pause is over: an ``AccountResumed``."""
        if self.paused.pop((account, model), None) is not None:
            self._event(f"▶ {account}{f' ({model})' if model else ''} resumed")

    # -- events -----------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        self.tally.handle(event)
        if isinstance(event, RunStarted):
            self.title = f"{event.recipe}  {event.backend} backend" if event.recipe \
                else f"{event.backend} backend"
            for step, count in event.steps:
                self.steps.setdefault(step, StepCounts()).total = count
            for warning in event.warnings:
                self.console.print(Text(warning, style="yellow"))
        elif isinstance(event, AccountPaused):
            self.pause(event.account, event.model, event.until, event.reason)
        elif isinstance(event, AccountResumed):
            self.resume(event.account, event.model)
        elif isinstance(event, NodeWaiting):
            self._step(event.node).review += 1
            if event.stale:
                self._say("stale pick", "magenta", f"{event.node}: {event.because}")
        elif isinstance(event, NodeStarted | NodeCached | NodeDone | NodeFailed | NodeSkipped):
            self._node(event)
        elif isinstance(event, NodeRetried):
            self._step(event.node).running.discard(event.node)
            self._event(_retry_line(event))
        elif isinstance(event, WindowChanged):
            trace = self.trace.setdefault(event.account, deque(maxlen=TRACE))
            trace.append(event.window)
        elif isinstance(event, InflightChanged):
            self.inflight[event.account] = event.in_flight
        elif isinstance(event, Rejected):
            self.rejections[event.account] += 1
        elif isinstance(event, Uploaded):
            self._event(f"↑ uploaded {event.sha256[:12]} to {event.account}")
        elif isinstance(event, RunStopping):
            self.stopping = event.reason
            self._event(f"■ stopping: {event.reason}")

    def _step(self, node: str) -> StepCounts:
        return self.steps.setdefault(_step_of(node), StepCounts())

    def _node(self, event: NodeStarted | NodeCached | NodeDone | NodeFailed | NodeSkipped) -> None:
        step = self._step(event.node)
        if isinstance(event, NodeStarted):
            step.running.add(event.node)
            if event.attempt == 1:
                why = headline(event.state, event.why) if event.state else "sent"
                self._event(f"→ {event.node} to {event.account}: {why}")
        elif isinstance(event, NodeCached):
            step.cached += 1
        elif isinstance(event, NodeDone):
            step.running.discard(event.node)
            step.done += 1
            self._event(f"✓ {event.node} in {event.seconds:.1f}s ({event.model_used})")
        elif isinstance(event, NodeFailed):
            step.running.discard(event.node)
            step.failed += 1
            self._event(f"✗ {event.node}: {event.error.type}: {event.error.message}")
            self._say("failed", "red", f"{event.node}: {event.error.message}")
        else:
            step.skipped += 1

    def _say(self, label: str, colour: str, text: str) -> None:
        """A line above the panel. A ``Text``, never markup: node ids (``s[k=v]``), matrix
        values and error messages are the recipe's and the API's words, printed as they are."""
        self.console.print(Text.assemble((label, colour), " ", text))

    def _event(self, text: str) -> None:
        self.events.append(f"{self.clock() - self.started:6.1f}s  {text}")

    # -- drawing ----------------------------------------------------------------------

    def render(self) -> RenderableType:
        """The whole panel (``rich.live.Live`` calls this on every refresh)."""
        parts: list[RenderableType] = [self._header(), self._steps(), self._accounts()]
        if self.paused:
            parts.append(self._paused())
        parts.append(self._recent())
        if self.stopping:
            parts.append(Text.assemble(("stopping: ", "bold red"), self.stopping))
        return Group(*parts)

    def _header(self) -> Text:
        """Two lines: where the run stands and how long it has to go; counts by state."""
        t = self.tally
        text = Text.assemble((f"{t.finished}/{t.total} nodes", "bold"), f"  {self.title}  ",
                             f"elapsed {fmt_eta(self.clock() - self.started)}  ",
                             f"ETA {fmt_eta(t.eta())}\n")
        for label, count in (("done", t.done - t.cached), ("cached", t.cached),
                             ("running", len(t.running)), ("queued", t.queued),
                             ("failed", t.failed), ("skipped", t.skipped),
                             ("review", t.for_review)):
            text.append(f"{label} {count}  ", style=_COLOURS.get(label, ""))
        text.append(f"retries {t.retries}")
        if t.reuploads:
            text.append(f"  re-uploads {t.reuploads}")
        return text

    def _steps(self) -> Table:
        table = Table.grid(padding=(0, 1))
        ranked = sorted(self.steps.items(),
                        key=lambda item: (not item[1].running, item[1].finished >= item[1].total))
        shown = dict(ranked[:SHOWN_STEPS])
        for name, counts in self.steps.items():
            if name not in shown:
                continue
            table.add_row(
                Text(name, overflow="ellipsis", no_wrap=True), counts.bar(),
                f"{counts.finished:>3}/{counts.total:<3}",
                Text.assemble(*_counts(counts)),
            )
        if len(self.steps) > SHOWN_STEPS:
            table.add_row(f"… {len(self.steps) - SHOWN_STEPS} more steps", "", "", "")
        return table

    def _accounts(self) -> Table:
        table = Table.grid(padding=(0, 2))
        for account in sorted(set(self.trace) | set(self.inflight)):
            trace = self.trace.get(account) or deque([0])
            table.add_row(
                Text(account, style="bold"), f"window {trace[-1]:>2}", _spark(trace),
                f"in flight {self.inflight.get(account, 0):>2}",
                f"rejected {self.rejections[account]}",
            )
        return table

    def _paused(self) -> Text:
        """The paused-accounts row: who is out, for how long, and why."""
        now = self.clock() - self.started
        text = Text("paused  ", style="bold yellow")
        for (account, model), (until, reason) in sorted(self.paused.items(), key=str):
            what = f"{account} ({model})" if model else account
            text.append(f"{what} for {fmt_eta(max(0.0, until - now))}: {reason}   ")
        return text

    def _recent(self) -> Text:
        text = Text()
        for line in self.events:
            text.append(f"{line}\n", style="grey70")
        return text


def _counts(counts: StepCounts) -> list[tuple[str, str]]:
    shown = [("done", counts.done), ("cached", counts.cached),
             ("running", len(counts.running)), ("failed", counts.failed),
             ("skipped", counts.skipped), ("review", counts.review)]
    return [(f"{label} {n}  ", _COLOURS[label]) for label, n in shown if n or label == "done"]


def _spark(values: deque[int]) -> Text:
    top = max(*values, 1)
    cells = "".join(_SPARK[min(len(_SPARK) - 1, v * (len(_SPARK) - 1) // top)] for v in values)
    return Text(cells.rjust(TRACE), style="yellow")


def _retry_line(event: NodeRetried) -> str:
    """``↻ hero: retry after 429 (in 6.2s)``; a re-upload and a model switch say so."""
    status = event.error.status if event.error.status is not None else event.error.type
    verb = {"re-upload": "re-upload", "switch-model": "switch model",
            "other-account": "other account"}.get(event.action, "retry")
    return f"↻ {event.node}: {verb} after {status} (in {event.delay:.1f}s)"
