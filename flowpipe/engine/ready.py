"""The ready queue: which nodes of the DAG may be sent, best first.

A node is ready when every node it references has finished; ready nodes leave in
critical-path order (longest chain below first, then plan order), so the work that
holds the most other work up goes out first.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from flowpipe.planner import Plan

__all__ = ["ReadyQueue"]


class ReadyQueue:
    """Readiness bookkeeping for one plan, and the heap of nodes waiting for a slot."""

    def __init__(self, plan: Plan) -> None:
        self._order = {nid: i for i, nid in enumerate(plan.nodes)}
        self._cp = plan.critical_path()
        self._children: dict[str, list[str]] = {nid: [] for nid in plan.nodes}
        self._missing: dict[str, int] = {}
        for nid, node in plan.nodes.items():
            deps = set(node.deps)
            self._missing[nid] = len(deps)
            for dep in deps:
                self._children[dep].append(nid)
        self._heap: list[tuple[float, int, str]] = []

    def __bool__(self) -> bool:
        return bool(self._heap)

    def roots(self) -> list[str]:
        """Nodes that reference no other node, in plan order."""
        return [nid for nid in self._order if self._missing[nid] == 0]

    def children(self, nid: str) -> list[str]:
        return self._children[nid]

    def position(self, nid: str) -> int:
        """``nid``'s place in the plan (0 for the first node)."""
        return self._order[nid]

    def arrived(self, child: str) -> bool:
        """One input of ``child`` finished; True when that was its last one."""
        self._missing[child] -= 1
        return self._missing[child] == 0

    def push(self, nid: str) -> None:
        heapq.heappush(self._heap, (-self._cp.get(nid, 0.0), self._order[nid], nid))

    def pop(self) -> str:
        return heapq.heappop(self._heap)[2]

    def pop_first(self, wanted: Callable[[str], bool]) -> str | None:
        """The best queued node that ``wanted`` accepts, taken out; None if there is none.

        Nodes passed over stay queued in their order (an account that is paused for one
        model, or an upscale that must run where its source was made, skips some).
        """
        passed: list[tuple[float, int, str]] = []
        found = None
        while self._heap:
            item = heapq.heappop(self._heap)
            if wanted(item[2]):
                found = item[2]
                break
            passed.append(item)
        for item in passed:
            heapq.heappush(self._heap, item)
        return found

    def any(self, wanted: Callable[[str], bool]) -> bool:
        """Whether some queued node is one ``wanted`` accepts."""
        return any(wanted(nid) for _, _, nid in self._heap)

    def queued(self) -> list[str]:
        """The queued nodes in the order they would leave."""
        return [nid for _, _, nid in sorted(self._heap)]
