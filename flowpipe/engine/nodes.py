"""The nodes of one run: their states, when each is ready, and what the cache answers.

A node becomes ready when every image it references exists; only then is its real
cache key known (DESIGN section 3). The book then answers it from the cache when it
can (the images are written at once) and queues it otherwise. Finishing a node
releases what waits on it, or skips it when the node did not end done. A node whose
``STEP.pick`` has no valid pick waits for review, and so does everything below it.

Before the run (``prime``) nothing is in flight, so the book may wait: for the remote
cache (a batch pulled what it asks for) and for the files of a cache hit. Once the run
goes (``offload`` set), a key that becomes known is looked up in the cache folder only
(the remote is asked, awaited off the run's loop, when the node is dispatched: ``pull``)
and a hit's files are written in a thread, as a made node's are.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable
from pathlib import Path

from flowpipe.engine.attempt import NodeAttempt
from flowpipe.engine.clock import RunClock
from flowpipe.engine.ledger import OutputLedger
from flowpipe.engine.ready import ReadyQueue
from flowpipe.engine.resolver import NeedsReview, Resolver
from flowpipe.engine.retry import RetryPolicy
from flowpipe.engine.state import NodeState, Status
from flowpipe.errors import ErrorInfo
from flowpipe.events import Event, NodeCached, NodeFailed, NodeSkipped, NodeWaiting
from flowpipe.planner import Plan, node_request, request_key
from flowpipe.store.picks import Picks
from flowpipe.store.responses import ResponseCache
from flowpipe.why import Baseline, Explainer, Verdict

__all__ = ["IN_FLIGHT", "NodeBook", "review_hint"]

IN_FLIGHT = "run stopped while this request was in flight (it may still be billed)"
COMMON_VERDICTS = 64  # distinct verdicts shared between nodes (the rest are one-offs)


def review_hint(out: Path) -> str:
    """What to do about nodes that wait for review of the images in ``out``."""
    return f"pick images with `flowpipe review {out}`, then run again"


class NodeBook:
    """Every node's state, the ready queue, and the files their results became."""

    def __init__(
        self,
        plan: Plan,
        *,
        cache: ResponseCache,
        out: Path,
        clock: RunClock,
        emit: Callable[[Event], None],
        refreshing: Callable[[str], bool],
        retry: RetryPolicy,
        seed: int | None,
        on_upload: Callable[[str, str], None],
        picks: Picks | None = None,
        baseline: Baseline | None = None,
    ) -> None:
        self.plan = plan
        self.cache = cache
        self._clock = clock
        self._emit = emit
        self._refreshing = refreshing
        rng = random.Random(seed)
        self.states = {
            nid: NodeState(NodeAttempt(node, retry, rng)) for nid, node in plan.nodes.items()
        }
        self.queue = ReadyQueue(plan)
        self.ledger = OutputLedger(out, plan, self.states, self.queue.position)
        self.resolver = Resolver(plan, cache, self.states, on_upload=on_upload, picks=picks)
        self.explainer = Explainer(plan, baseline, refreshing=refreshing)
        self._verdicts: dict[Verdict, Verdict] = {}  # the common ones, made once
        self.open = len(plan.nodes)  # nodes not finished yet
        # While the run goes: where work that would hold the loop goes (a thread).
        self.offload: Callable[[Callable[[], None]], None] | None = None

    def start(self) -> None:
        """Answer every node the cache can, from the roots down, sending nothing."""
        self.ledger.start()
        for nid in self.queue.roots():
            if self.states[nid].status == "pending":
                status = self.prepare(nid)
                if status is not None:
                    self.complete(nid, status)

    def prepare(self, nid: str) -> Status | None:
        """All upstream images exist: compute the real key, then answer from cache or queue.

        Returns the node's final status when it finished here (a cache hit, or a
        reference that cannot resolve), None when it was queued.
        """
        state = self.states[nid]
        try:
            self._key(nid)
        except NeedsReview as exc:
            self._wait(nid, exc.message, stale=exc.stale)
            return "waiting"
        except LookupError as exc:
            state.error = ErrorInfo(type="ReferenceError", message=str(exc))
            self._emit(NodeFailed(self._clock.now(), nid, state.error))
            return "failed"
        if self.from_cache(nid, remote=self.offload is None):
            return "done"
        self.explain(nid, cached=False)
        state.status = "ready"
        self.queue.push(nid)
        return None

    def _key(self, nid: str) -> None:
        """``nid``'s reference hashes and real key, from its upstream images (LookupError
        when one is missing, NeedsReview when a pick is)."""
        node, state = self.plan.nodes[nid], self.states[nid]
        state.ref_hashes = self.resolver.hashes(node)
        state.key = request_key(node, state.ref_hashes, self.plan.backend)

    def from_cache(self, nid: str, *, refresh: bool = True, remote: bool = True) -> bool:
        """Finish ``nid`` from the cache if its key is there (and not being refreshed);
        ``remote`` False: from the local cache only."""
        node = self.plan.nodes[nid]
        state = self.states[nid]
        if state.key is None or (refresh and self._refreshing(node.step)):
            return False
        hit = self.cache.get_generation(state.key, remote=remote)
        if hit is None:
            return False
        gen, blobs = hit
        self.ledger.before_writing(node, gen.images)
        write = functools.partial(self.ledger.write_images, node, gen, blobs)
        if self.offload is None:
            write()
        else:
            self.offload(write)
        state.cache_hit = True
        state.generation = gen
        self.explain(nid, cached=True)
        self._emit(NodeCached(self._clock.now(), nid))
        return True

    async def pull(self, nid: str) -> None:
        """Bring ``nid``'s result from the remote if it is there, awaited off the loop (so
        a ``from_cache`` right after reads it locally); nothing for a refreshed node."""
        key = self.states[nid].key
        if key is not None and not self._refreshing(self.plan.nodes[nid].step):
            await self.cache.pull(key)

    def explain(self, nid: str, *, cached: bool) -> None:
        """Say why ``nid`` is cached or sent: what changed since the lock (its real key and
        request are known, since its upstream images exist)."""
        node, state = self.plan.nodes[nid], self.states[nid]
        request = node_request(node, state.ref_hashes)
        verdict = self.explainer.explain(node, request, key=state.key, cached=cached)
        if len(self._verdicts) < COMMON_VERDICTS:  # the first ones seen are shared, and
            self._verdicts.setdefault(verdict, verdict)  # "new: not in the cache" is most
        state.verdict = self._verdicts.get(verdict, verdict)

    def _ended(self, nid: str) -> None:
        """``nid`` has ended: its entry goes to the ledger's journal, and its state keeps
        only what the run still needs (an upstream node's images, for the nodes below)."""
        self.ledger.record(self.plan.nodes[nid])
        state = self.states[nid]
        if not self.queue.children(nid):
            state.generation = None
        elif state.generation is not None and state.generation.request is not None:
            state.generation = dataclasses.replace(state.generation, request=None)

    def complete(self, nid: str, status: Status) -> None:
        """Mark a node finished and release (or skip) what waits on it."""
        stack = [(nid, status)]
        while stack:
            cur, st = stack.pop()
            self.states[cur].status = st
            self.open -= 1
            self._ended(cur)
            for child in self.queue.children(cur):
                if self.states[child].status != "pending":
                    continue
                if st == "waiting":
                    self._wait(child, f"upstream node '{cur}' waits for review", stale=False)
                    stack.append((child, "waiting"))
                elif st != "done":
                    because = f"upstream node '{cur}' {st}"
                    self.states[child].error = ErrorInfo(type="Skipped", message=because)
                    self._emit(NodeSkipped(self._clock.now(), child, because))
                    stack.append((child, "skipped"))
                elif self.queue.arrived(child):
                    child_status = self.prepare(child)
                    if child_status is not None:
                        stack.append((child, child_status))

    def _wait(self, nid: str, because: str, *, stale: bool) -> None:
        kind = "StalePick" if stale else "WaitingForReview"
        hint = review_hint(self.ledger.out)
        self.states[nid].error = ErrorInfo(type=kind, message=because, hint=hint)
        self._emit(NodeWaiting(self._clock.now(), nid, because, stale))

    def fail(self, nid: str, info: ErrorInfo) -> None:
        self.states[nid].error = info
        self._emit(NodeFailed(self._clock.now(), nid, info))
        self.complete(nid, "failed")

    def settle_from_cache(self) -> None:
        """Finish what the cache can answer, refreshing or not: a stopped run that meant
        to re-make a node keeps the result it already had."""
        for nid, node in self.plan.nodes.items():
            state = self.states[nid]
            deps_done = all(self.states[d].status == "done" for d in node.deps)
            if state.status not in ("pending", "ready") or not deps_done:
                continue
            if state.key is None:
                try:
                    self._key(nid)
                except (LookupError, NeedsReview):
                    continue
            if self.from_cache(nid, refresh=False):
                state.status = "done"
                self._ended(nid)

    def skip_unfinished(self, reason: str) -> None:
        """Mark every node that has not finished as skipped, with ``reason``."""
        for nid, state in self.states.items():
            if not state.finished:
                why = IN_FLIGHT if state.status == "running" else reason
                state.status = "skipped"
                state.error = ErrorInfo(type="Skipped", message=why)
                self._emit(NodeSkipped(self._clock.now(), nid, why))
                self._ended(nid)
