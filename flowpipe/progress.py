"""What a person sees while a run goes: plain lines for logs and CI, the live panel on a TTY.

The terminal face of ``flowpipe run``: sinks of the run's events, and the one line
that says which backend a run talks to.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from flowpipe.events import (
    AccountPaused,
    AccountResumed,
    Event,
    EventSink,
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeRetried,
    NodeSkipped,
    NodeStarted,
    NodeWaiting,
    RunStarted,
    RunStopping,
    Uploaded,
    WindowChanged,
)

if TYPE_CHECKING:
    from flowpipe.engine.runner import RunOptions
    from flowpipe.results import RunResult

__all__ = [
    "PlainProgress",
    "Tally",
    "closing_lines",
    "describe_backend",
    "describe_pause",
    "fmt_eta",
    "open_display",
]


class Tally:
    """Counts by state, kept from events; both displays read it."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.cached = 0
        self.failed = 0
        self.skipped = 0
        self.for_review = 0  # nodes waiting for a reviewer's pick
        self.retries = 0
        self.reuploads = 0  # a 403 answered by uploading again: not a retry
        self.running: set[str] = set()
        self.reasons: dict[str, str] = {}  # node -> "changed: prompt: ...", sent, not ended
        self.windows: dict[str, int] = {}
        self.paused: dict[tuple[str, str | None], AccountPaused] = {}
        self.started = time.monotonic()
        self._sent_done = 0

    def handle(self, event: Event) -> None:
        if isinstance(event, AccountPaused):
            self.paused[(event.account, event.model)] = event
        elif isinstance(event, AccountResumed):
            self.paused.pop((event.account, event.model), None)
        elif isinstance(event, RunStarted):
            self.total = event.nodes
        elif isinstance(event, NodeStarted):
            self.running.add(event.node)
            if event.state:
                self.reasons[event.node] = _reason(event.state, event.why)
        elif isinstance(event, NodeCached):
            self.done += 1
            self.cached += 1
        elif isinstance(event, NodeDone):
            self.running.discard(event.node)
            self.reasons.pop(event.node, None)
            self.done += 1
            self._sent_done += 1
        elif isinstance(event, NodeRetried):
            self.running.discard(event.node)
            if event.action == "re-upload":
                self.reuploads += 1
            elif event.action != "paused":  # a pause is no retry (run.json agrees)
                self.retries += 1
        elif isinstance(event, NodeFailed):
            self.running.discard(event.node)
            self.reasons.pop(event.node, None)
            self.failed += 1
        elif isinstance(event, NodeSkipped):
            self.running.discard(event.node)
            self.reasons.pop(event.node, None)
            self.skipped += 1
        elif isinstance(event, NodeWaiting):
            self.for_review += 1
        elif isinstance(event, WindowChanged):
            self.windows[event.account] = event.window

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped + self.for_review

    @property
    def queued(self) -> int:
        """Nodes not started yet (not waiting for review: that is ``for_review``)."""
        return max(0, self.total - self.finished - len(self.running))

    def paused_lines(self) -> list[str]:
        """One line per account (or model on one) a quota pause holds, soonest back first:
        ``a@x: out until 18.0s (PUBLIC_ERROR_USER_REQUESTS_THROTTLED)``."""
        pauses = sorted(self.paused.values(), key=lambda p: (p.until, p.account))
        return [describe_pause(p) for p in pauses]

    def eta(self) -> float | None:
        """Seconds left at the pace of the requests finished so far."""
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        if self._sent_done == 0:
            return None
        return (time.monotonic() - self.started) / self._sent_done * left


def describe_pause(event: AccountPaused) -> str:
    """``a@x (nano-banana-pro): out until 18.0s (REASON)``; times are the run's clock."""
    what = f"{event.account} ({event.model})" if event.model else event.account
    return f"{what}: out until {event.until:.1f}s ({event.reason})"


def _reason(state: str, why: tuple[str, ...]) -> str:
    """``changed: prompt: "a" → "b"; upstream image changed: context hero.0``."""
    return f"{state}: {'; '.join(why)}" if why else state


def fmt_eta(seconds: float | None) -> str:
    """``1m05s``, ``42s``; ``?`` when not known yet."""
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class PlainProgress:
    """One line per event that matters, for logs and CI (no cursor tricks)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tally = Tally()

    def _line(self, text: str) -> None:
        t = self.tally
        print(f"[{t.finished}/{t.total}] {text}", file=self.stream, flush=True)

    def handle(self, event: Event) -> None:
        why = self.tally.reasons.get(getattr(event, "node", ""))  # the tally forgets it at the end
        self.tally.handle(event)
        if isinstance(event, RunStarted):
            for warning in event.warnings:
                self._line(warning)
            self._line(f"run: {event.nodes} nodes on the {event.backend} backend")
        elif isinstance(event, AccountPaused):
            self._line(f"paused {describe_pause(event)}")
        elif isinstance(event, AccountResumed):
            what = f"{event.account} ({event.model})" if event.model else event.account
            self._line(f"resumed {what}")
        elif isinstance(event, NodeCached):
            self._line(f"cached {event.node}")
        elif isinstance(event, NodeDone):
            self._line(f"done {event.node} in {event.seconds:.1f}s ({event.model_used})"
                       + (f": {why}" if why else ""))
        elif isinstance(event, NodeRetried):
            status = event.error.status if event.error.status is not None else "-"
            again = ("waits for an account that can take it" if event.action == "paused"
                     else f"again in {event.delay:.1f}s")
            self._line(f"{event.action} {event.node}: HTTP {status} {event.error.type} ({again})")
        elif isinstance(event, NodeFailed):
            hint = f" ({event.error.hint})" if event.error.hint else ""
            self._line(f"failed {event.node}: {event.error.type}: {event.error.message}{hint}"
                       + (f" [{why}]" if why else ""))
        elif isinstance(event, NodeSkipped):
            self._line(f"skipped {event.node}: {event.because}")
        elif isinstance(event, NodeWaiting):
            self._line(f"{'stale pick' if event.stale else 'waiting'} {event.node}: "
                       f"{event.because}")
        elif isinstance(event, Uploaded):
            self._line(f"uploaded {event.sha256[:12]} to {event.account}")
        elif isinstance(event, RunStopping):
            self._line(f"stopping: {event.reason}")


def describe_backend(options: RunOptions) -> str:
    """One line for stderr, so nobody mistakes simulated images for real ones."""
    if options.frozen:
        return "--frozen: answering from the cache only; nothing will be sent"
    from flowpipe.engine.backend import choose_backend

    choice = choose_backend(options.backend, options.base_url, options.token)
    if choice.base_url is None:
        return (
            "no USEAPI_TOKEN: running on the embedded simulator "
            "(placeholder images, nothing is billed)"
        )
    return f"backend {choice.kind} at {choice.base_url}"


@contextlib.contextmanager
def open_display(*, plain: bool = False) -> Iterator[list[EventSink]]:
    """A live panel when stderr is a terminal, else one plain line per event."""
    if plain or not sys.stderr.isatty():
        yield [PlainProgress(sys.stderr)]
        return
    from flowpipe.live import LiveProgress

    with LiveProgress() as live:
        yield [live]


def closing_lines(result: RunResult, *, update_flag: str) -> list[str]:
    """What a run says when it ends; the last line names the report when there is one."""
    summary = result.summary
    lines = [f"{result.outcome}: {summary.get('done', 0)}/{summary.get('nodes', 0)} nodes "
             f"done, output in {result.out}"]
    lines.extend(f"waiting for review: {nid}: {result.nodes[nid].reason}"
                 for nid in result.waiting)
    if result.exit_code != 0 and result.message:
        lines.append(result.message)
    if result.removed:
        files = "file" if result.removed == 1 else "files"  # a step gone, or a count lowered
        lines.append(f"removed {result.removed} image {files} no node lists any more")
    if result.lock is not None and result.lock_note:
        lines.append(f"lock written to {result.lock}: {result.lock_note} ({update_flag} "
                     "writes it there)")
    if result.report is not None:
        lines.append(f"report: {result.report}")
    return lines
