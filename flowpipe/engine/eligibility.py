"""Which account may take which ready node now, and when waiting for one stops paying.

Two things narrow where a node may go: quota pauses (2026-07, ``AccountPool.pauses``)
of an account or of the node's model on it, and an upscale node's home, the account
that made its source (its id is valid there, and an uploaded copy may not be
upscalable). The dispatchers ask ``can_take``; the run asks ``stalled`` whenever
nothing is in flight: if every account that could run a waiting node is out for
longer than ``max_wait``, waiting is not worth it and the run stops (exit 3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from flowpipe.engine.accounts import AccountPool
from flowpipe.engine.clock import RunClock
from flowpipe.engine.pauses import UPSCALES, describe_pauses
from flowpipe.engine.ready import ReadyQueue
from flowpipe.engine.resolver import Resolver
from flowpipe.engine.state import NodeState
from flowpipe.errors import QuotaStopError
from flowpipe.planner import Plan

__all__ = ["Eligibility"]


class Eligibility:
    """Where each node of one run may go, given the pool's pauses and drops."""

    def __init__(self, plan: Plan, states: Mapping[str, NodeState], resolver: Resolver,
                 pool: AccountPool, clock: RunClock, *, max_wait: float) -> None:
        self.plan = plan
        self.states = states
        self.resolver = resolver
        self.pool = pool
        self.clock = clock
        self.max_wait = max_wait
        self._pinned = any(node.kind == "upscale" for node in plan.nodes.values())

    def asks(self, nid: str) -> str:
        """What ``nid`` asks for, as pauses name it: its model, or ``UPSCALES`` (the upscale
        endpoint names no model: a quota answer to it holds upscales, not the source's
        model)."""
        return UPSCALES if self.plan.nodes[nid].kind == "upscale" \
            else self.states[nid].attempt.model

    def candidates(self, nid: str) -> list[tuple[str, str | None]]:
        """(account, model) pairs that could run ``nid``: where it may go (an upscale: its
        source's account), what it asks for there (``asks``)."""
        node = self.plan.nodes[nid]
        usable = self.pool.usable_accounts()
        if node.kind == "upscale":
            home = self.resolver.home(node, usable)
            usable = [home] if home else usable
        return [(a, self.asks(nid)) for a in usable]

    def can_take(self, account: str, nid: str) -> bool:
        """Whether ``nid`` may go to ``account`` now."""
        return any(a == account and self.pool.available(a, m) for a, m in self.candidates(nid))

    def has_work(self, account: str, queue: ReadyQueue) -> bool:
        """Whether a queued node could go to ``account`` now (a paused account waits)."""
        if not queue:
            return False
        if not self.pool.pauses and not self._pinned:
            return True  # nothing paused, nothing pinned: any node will do
        if not self.pool.available(account, None):
            return False
        return queue.any(lambda nid: self.can_take(account, nid))

    def stalled(self) -> QuotaStopError | None:
        """The stop to make when every account that could run a waiting node is paused
        for longer than ``max_wait``; None while some node could go within it.

        Call it only when nothing is in flight: an answer still to come could change it.
        """
        if not self.pool.pauses:
            return None
        waiting = [nid for nid, state in self.states.items() if state.status == "ready"]
        if not waiting:
            return None
        now = self.clock.api_time()
        soonest = min(
            min((self.pool.free_at(a, m) for a, m in self.candidates(nid)), default=now)
            for nid in waiting
        )
        if soonest - now <= self.max_wait:
            return None
        wanted = {pair for nid in waiting for pair in self.candidates(nid)}
        holding = [p for p in self.pool.pauses.active({a for a, _ in wanted})
                   if p.model is None or (p.account, p.model) in wanted]
        who = describe_pauses(holding, now=now, scale=self.clock.scale,
                              wall=dt.datetime.now(dt.UTC))
        return QuotaStopError(
            f"every account that could run the {len(waiting)} waiting node(s) is paused "
            f"for longer than max_wait ({self.max_wait:g} API seconds): {who}",
            status=429, reason="paused beyond max_wait", option="max_wait",
            hint="run again once they are back: what finished comes from the cache",
        )
