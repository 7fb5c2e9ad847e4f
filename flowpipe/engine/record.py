"""The sink that remembers a run for ``run.json`` (and so for the report)."""

from __future__ import annotations

from typing import Any

from flowpipe.engine.events import (
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

__all__ = ["RunRecorder"]


class RunRecorder:
    """Keeps the timeline (window, in-flight, rejections) and per-node facts."""

    def __init__(self) -> None:
        self.window: list[tuple[float, str, int]] = []
        self.inflight: list[tuple[float, str, int]] = []
        self.rejections: list[tuple[float, str, int | None]] = []
        self.nodes: dict[str, dict[str, Any]] = {}
        self.retries = 0

    def _node(self, nid: str) -> dict[str, Any]:
        return self.nodes.setdefault(
            nid, {"cache_hit": False, "seconds": 0.0, "attempts": 0, "account": None}
        )

    def handle(self, event: Event) -> None:
        if isinstance(event, WindowChanged):
            self.window.append((round(event.t, 3), event.account, event.window))
        elif isinstance(event, InflightChanged):
            point = (round(event.t, 3), event.account, event.in_flight)
            if not self.inflight or self.inflight[-1][1:] != point[1:]:
                self.inflight.append(point)
        elif isinstance(event, Rejected):
            self.rejections.append((round(event.t, 3), event.account, event.status))
        elif isinstance(event, NodeCached):
            self._node(event.node)["cache_hit"] = True
        elif isinstance(event, NodeStarted):
            entry = self._node(event.node)
            entry["attempts"] = event.attempt
            entry["account"] = event.account
        elif isinstance(event, NodeDone):
            self._node(event.node)["seconds"] = round(event.seconds, 3)
        elif isinstance(event, NodeRetried):
            self.retries += 1
        elif isinstance(event, NodeFailed):
            self._node(event.node)["error"] = event.error.type

    def timeline(self) -> dict[str, list[list[Any]]]:
        return {
            "window": [list(p) for p in self.window],
            "inflight": [list(p) for p in self.inflight],
            "rejections": [list(p) for p in self.rejections],
        }
