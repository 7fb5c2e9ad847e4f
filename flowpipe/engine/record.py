"""The sink that records a run for ``run.json`` (and so for the report).

It keeps nothing that grows with the run: each point of the timeline goes straight to
the run's ``RunJournal``, and a node's record goes there when the node ends (cached,
done, failed, waiting or skipped); only the nodes still going are held. The pauses,
a handful per run, are kept to the end (a later event extends an open one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

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
    WindowChanged,
)
from flowpipe.store.runlog import NodeRun, PauseRun, RunJournal

__all__ = ["RunRecorder"]


@dataclass(slots=True)
class _Node:
    cache_hit: bool = False
    seconds: float = 0.0
    attempts: int = 0
    account: str | None = None
    error: str | None = None
    state: str | None = None
    why: tuple[str, ...] = ()

    def run(self) -> NodeRun:
        return NodeRun(self.cache_hit, self.seconds, self.attempts, self.account, self.error,
                       self.state, self.why)


class RunRecorder:
    """Streams the timeline (window, in-flight, rejections) and per-node facts to
    ``journal`` (one kept in memory by default), and keeps the pauses."""

    def __init__(self, journal: RunJournal | None = None) -> None:
        self.journal = journal if journal is not None else RunJournal(None)
        self._pauses: list[PauseRun] = []
        self._open: dict[str, _Node] = {}  # nodes that have not ended yet
        self._last_inflight: tuple[str, int] | None = None  # the last in-flight point's
        self.retries = 0

    def handle(self, event: Event) -> None:
        if isinstance(event, WindowChanged | InflightChanged | Rejected):
            self._timeline(event)
        elif isinstance(event, AccountPaused | AccountResumed):
            self._pause(event)
        elif isinstance(event, NodeRetried):
            self.retries += 1
        elif isinstance(event, NodeCached | NodeStarted | NodeDone | NodeFailed):
            self._node_event(event)
        elif isinstance(event, NodeWaiting):
            entry = self._open.setdefault(event.node, _Node())
            entry.error = "StalePick" if event.stale else "WaitingForReview"
            self._end(event.node)
        elif isinstance(event, NodeSkipped):
            self._end(event.node)  # recorded only if it got as far as being sent

    def _timeline(self, event: WindowChanged | InflightChanged | Rejected) -> None:
        t = round(event.t, 3)
        if isinstance(event, WindowChanged):
            self.journal.point("window", (t, event.account, event.window))
        elif isinstance(event, InflightChanged):
            if self._last_inflight != (event.account, event.in_flight):
                self._last_inflight = (event.account, event.in_flight)
                self.journal.point("inflight", (t, event.account, event.in_flight))
        else:
            self.journal.point("rejections", (t, event.account, event.status))

    def _pause(self, event: AccountPaused | AccountResumed) -> None:
        """One record per stretch out: a longer pause of what is still out extends it."""
        i = self._open_pause(event.account, event.model)
        if isinstance(event, AccountResumed):
            if i is not None:
                self._pauses[i] = dataclasses.replace(self._pauses[i], resumed=round(event.t, 3))
        elif i is not None:
            self._pauses[i] = dataclasses.replace(self._pauses[i], reason=event.reason,
                                                  until=round(event.until, 3))
        else:
            self._pauses.append(PauseRun(round(event.t, 3), event.account, event.model,
                                         event.reason, round(event.until, 3)))

    def _open_pause(self, account: str, model: str | None) -> int | None:
        """Where the record of a pause of ``account`` (``model``) that has not ended is."""
        for i in reversed(range(len(self._pauses))):
            pause = self._pauses[i]
            if (pause.account, pause.model) == (account, model) and pause.resumed is None:
                return i
        return None

    def pauses(self) -> list[PauseRun]:
        """Every pause the run met, in the order they began."""
        return list(self._pauses)

    def _node_event(self, event: NodeCached | NodeStarted | NodeDone | NodeFailed) -> None:
        entry = self._open.setdefault(event.node, _Node())
        if isinstance(event, NodeCached):
            entry.cache_hit = True
            entry.state = "cached"
        elif isinstance(event, NodeStarted):
            entry.attempts = event.attempt
            entry.account = event.account
            entry.state, entry.why = event.state or None, event.why
            return
        elif isinstance(event, NodeDone):
            entry.seconds = round(event.seconds, 3)
        else:
            entry.error = event.error.type
        self._end(event.node)

    def _end(self, node: str) -> None:
        """``node`` ended: its record goes to the journal."""
        entry = self._open.pop(node, None)
        if entry is not None:
            self.journal.node(node, entry.run())

    def flush(self) -> None:
        """Record the nodes that never ended (a run cut short): what they did so far."""
        for node in list(self._open):
            self._end(node)
