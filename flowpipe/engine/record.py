"""The sink that remembers a run for ``run.json`` (and so for the report)."""

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
    NodeStarted,
    NodeWaiting,
    Rejected,
    WindowChanged,
)
from flowpipe.store.runlog import NodeRun, PauseRun

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


class RunRecorder:
    """Keeps the timeline (window, in-flight, rejections, pauses) and per-node facts."""

    def __init__(self) -> None:
        self.window: list[tuple[float, str, int]] = []
        self.inflight: list[tuple[float, str, int]] = []
        self.rejections: list[tuple[float, str, int | None]] = []
        self._pauses: list[PauseRun] = []
        self._nodes: dict[str, _Node] = {}
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
            entry = self._nodes.setdefault(event.node, _Node())
            entry.error = "StalePick" if event.stale else "WaitingForReview"

    def _timeline(self, event: WindowChanged | InflightChanged | Rejected) -> None:
        if isinstance(event, WindowChanged):
            self.window.append((round(event.t, 3), event.account, event.window))
        elif isinstance(event, InflightChanged):
            point = (round(event.t, 3), event.account, event.in_flight)
            if not self.inflight or self.inflight[-1][1:] != point[1:]:
                self.inflight.append(point)
        else:
            self.rejections.append((round(event.t, 3), event.account, event.status))

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
        entry = self._nodes.setdefault(event.node, _Node())
        if isinstance(event, NodeCached):
            entry.cache_hit = True
            entry.state = "cached"
        elif isinstance(event, NodeStarted):
            entry.attempts = event.attempt
            entry.account = event.account
            entry.state, entry.why = event.state or None, event.why
        elif isinstance(event, NodeDone):
            entry.seconds = round(event.seconds, 3)
        else:
            entry.error = event.error.type

    def nodes(self) -> dict[str, NodeRun]:
        """What each node that saw an event did, in the order they first did."""
        return {
            nid: NodeRun(n.cache_hit, n.seconds, n.attempts, n.account, n.error, n.state, n.why)
            for nid, n in self._nodes.items()
        }
