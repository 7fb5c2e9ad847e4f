"""The sink that remembers a run for ``run.json`` (and so for the report)."""

from __future__ import annotations

from dataclasses import dataclass

from flowpipe.events import (
    Event,
    InflightChanged,
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeRetried,
    NodeStarted,
    Rejected,
    WindowChanged,
)
from flowpipe.store.runlog import NodeRun

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
    """Keeps the timeline (window, in-flight, rejections) and per-node facts."""

    def __init__(self) -> None:
        self.window: list[tuple[float, str, int]] = []
        self.inflight: list[tuple[float, str, int]] = []
        self.rejections: list[tuple[float, str, int | None]] = []
        self._nodes: dict[str, _Node] = {}
        self.retries = 0

    def handle(self, event: Event) -> None:
        if isinstance(event, WindowChanged | InflightChanged | Rejected):
            self._timeline(event)
        elif isinstance(event, NodeRetried):
            self.retries += 1
        elif isinstance(event, NodeCached | NodeStarted | NodeDone | NodeFailed):
            self._node_event(event)

    def _timeline(self, event: WindowChanged | InflightChanged | Rejected) -> None:
        if isinstance(event, WindowChanged):
            self.window.append((round(event.t, 3), event.account, event.window))
        elif isinstance(event, InflightChanged):
            point = (round(event.t, 3), event.account, event.in_flight)
            if not self.inflight or self.inflight[-1][1:] != point[1:]:
                self.inflight.append(point)
        else:
            self.rejections.append((round(event.t, 3), event.account, event.status))

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
