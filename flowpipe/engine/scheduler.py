"""The coordinator: ready nodes through the limiters and the API, answers carried out.

The ``NodeBook`` knows which nodes are ready (and answers what the cache can); one
dispatcher per account takes the most urgent ready node whenever its limiter grants a
slot. What an answer means is the node's ``NodeAttempt``'s business, references the
``Resolver``'s, files and the manifest the ``OutputLedger``'s, requests in the air
``InFlight``'s; this module carries the decisions out. A retry waits off-slot, so a
rejected request never holds capacity while it sleeps. Every wait goes through the
run's clock.

A quota pause (2026-07) takes an account, or a model on it, out of dispatch until it
ends; the node goes back to the queue for another account. When every account that
could run what is left is paused for longer than ``max_wait``, the run stops (exit 3)
and says who comes back when.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from flowpipe.api import FlowClient, ImageRequest, ImageResult, UpscaledImage
from flowpipe.engine.accounts import AccountPool
from flowpipe.engine.attempt import NodeAttempt
from flowpipe.engine.classify import ErrorKind, classify
from flowpipe.engine.clock import RunClock
from flowpipe.engine.eligibility import Eligibility
from flowpipe.engine.inflight import InFlight
from flowpipe.engine.limiter import Outcome, Permit
from flowpipe.engine.nodes import NodeBook
from flowpipe.engine.resolver import Request
from flowpipe.engine.retry import Action, Decision, RetryPolicy
from flowpipe.engine.state import NodeState, Status, describe, image_bytes
from flowpipe.errors import (
    APIError,
    ErrorInfo,
    FlowpipeError,
    QuotaError,
    QuotaStopError,
    StopRunError,
)
from flowpipe.events import (
    Broadcast,
    Event,
    EventSink,
    NodeDone,
    NodeRetried,
    NodeStarted,
    RunStarted,
    RunStopping,
    Uploaded,
)
from flowpipe.planner import Plan, node_request
from flowpipe.store.claims import Claims
from flowpipe.store.picks import Picks
from flowpipe.store.responses import CachedGeneration, ResponseCache
from flowpipe.why import Baseline

__all__ = ["Scheduler", "SchedulerOptions"]

T = TypeVar("T")

CLAIM_WAIT = 1.0  # API seconds between looks at a key another process is making
STORE_THREADS = 2  # threads that hash, cache and write answers
MAX_WAIT = 600.0  # API seconds a run waits for paused accounts before it stops


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerOptions:
    """How the coordinator behaves; ``stop_grace`` is in the clock's seconds,
    ``max_wait`` in API seconds; ``captcha_retry`` overrides every node's."""

    refresh_all: bool = False
    refresh_steps: frozenset[str] = frozenset()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stop_grace: float = 30.0
    seed: int | None = None
    max_wait: float = MAX_WAIT
    captcha_retry: int | None = None


class Scheduler:
    """One run of one plan. Create, ``prime()``, ``await run()``, read ``states``."""

    def __init__(
        self,
        plan: Plan,
        *,
        cache: ResponseCache,
        out: Path,
        clock: RunClock,
        claims: Claims | None = None,
        sinks: Sequence[EventSink] | Broadcast = (),
        options: SchedulerOptions | None = None,
        picks: Picks | None = None,
        baseline: Baseline | None = None,
    ) -> None:
        self.plan = plan
        self.cache = cache
        self.clock = clock
        self.claims = claims
        self.sinks = sinks if isinstance(sinks, Broadcast) else Broadcast(sinks)
        self.options = options or SchedulerOptions()
        self.book = NodeBook(
            plan,
            cache=cache,
            out=out,
            clock=clock,
            emit=self.emit,
            refreshing=self._refreshing,
            retry=self.options.retry,
            seed=self.options.seed,
            on_upload=self._uploaded,
            picks=picks,
            baseline=baseline,
        )
        self.states, self.queue = self.book.states, self.book.queue
        self.ledger, self.resolver = self.book.ledger, self.book.resolver
        self.client: FlowClient | None = None
        self.pool: AccountPool | None = None
        self.stop_error: FlowpipeError | None = None
        self.stop_reason: str | None = None
        self.crash: BaseException | None = None
        self.stopping = False
        self.api_calls = self.uploads = self.retries = self.rejections = self.claim_waits = 0
        self.eligible: Eligibility | None = None
        self.reuploads = 0  # requests sent again after a 403 re-upload: not retries
        self._sending: set[str] = set()  # keys a node of this run is sending (no claim needed)
        self._primed = False
        self._cond: asyncio.Condition | None = None
        self.inflight = InFlight(clock, self._task_done)
        # Answers are stored on a few threads of their own: spread over the loop's
        # default executor, each image's large allocations land in many threads'
        # malloc arenas, which keep the freed memory resident and grow with the run.
        self._writer = ThreadPoolExecutor(max_workers=STORE_THREADS,
                                          thread_name_prefix="flowpipe-store")

    # -- events ------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def emit(self, event: Event) -> None:
        self.sinks(event)

    def _refreshing(self, step: str) -> bool:
        return self.options.refresh_all or step in self.options.refresh_steps

    def _uploaded(self, account: str, sha: str) -> None:
        self.uploads += 1
        self.emit(Uploaded(self.now(), account, sha))

    # -- the run -----------------------------------------------------------------------

    def prime(self) -> list[str]:
        """Answer every node the cache can, without sending anything.

        Returns the nodes that are ready and need a request. Nodes behind those are
        not looked at yet: their keys depend on images that do not exist. This is
        what a frozen run checks before any request could be sent.
        """
        if not self._primed:
            self._primed = True
            steps = Counter(node.step for node in self.plan.nodes.values())
            warnings = tuple(str(w) for w in self.plan.warnings)
            self.emit(RunStarted(self.now(), len(self.plan.nodes), self.plan.backend,
                                 warnings=warnings, steps=tuple(steps.items()),
                                 recipe=self.plan.name))
            self.book.start()
        return self.book.queue.queued()

    async def run(self, client: FlowClient, pool: AccountPool) -> dict[str, NodeState]:
        """Run every node to done, failed or skipped; return the states."""
        self.client, self.pool = client, pool
        self.eligible = Eligibility(self.plan, self.states, self.resolver, pool, self.clock,
                                    max_wait=self.options.max_wait)
        self._cond = asyncio.Condition()
        self.prime()
        self.book.offload = self._offload  # from here on nothing the book does holds the loop
        dispatchers = [asyncio.create_task(self._dispatch(account)) for account in pool.accounts]
        for task in dispatchers:  # a dispatcher that dies of a bug ends the run, not hangs it
            task.add_done_callback(self._task_done)
        try:
            await self._wait_for_the_end()
        finally:
            self.stopping = True
            await self._notify()
            for task in dispatchers:
                task.cancel()
            await asyncio.gather(*dispatchers, return_exceptions=True)
            await self.inflight.drain(self.options.stop_grace)
            self._writer.shutdown(wait=False)  # the drain waited for every answer stored
            self.book.offload = None  # nothing in flight: what end() reads and writes may wait
            self.end("run stopped before this node was sent")
        if self.crash is not None:
            raise self.crash
        return self.states

    async def _wait_for_the_end(self) -> None:
        """Until every node finished or the run stops (itself, when pauses last too long)."""
        assert self._cond is not None
        while True:
            async with self._cond:
                await self._cond.wait_for(
                    lambda: self._finished() or self.stopping or self._stalled() is not None
                )
            stalled = None if self.stopping else self._stalled()
            if stalled is None:
                return
            self.request_stop(stalled.message, stalled)

    def end(self, reason: str, *, settle: bool = True) -> None:
        """Close the run: what the cache can still answer is done (unless ``settle`` is
        False: the cache is not read), the rest skipped."""
        if settle:
            self.book.settle_from_cache()
        self.book.skip_unfinished(reason)
        if self.claims is not None:
            self.claims.release_all()

    def abandon(self) -> None:
        """Cancel requests in flight (a second Ctrl-C); answers already in are kept."""
        self.inflight.abandon()

    def request_stop(self, reason: str, error: FlowpipeError | None = None) -> None:
        """Send nothing new; in-flight requests finish and are stored."""
        if not self.stopping:
            self.stopping = True
            self.stop_reason = reason
            info = ErrorInfo.of(error) if error is not None else None
            self.emit(RunStopping(self.now(), reason, info))
        if error is not None and self.stop_error is None:
            self.stop_error = error
        self._poke()

    def _finished(self) -> bool:
        if self.book.open == 0 or self.crash is not None:
            return True
        if self.pool is not None and not self.pool.usable_accounts() and not self.inflight:
            return True  # every account was dropped: what is left can never be sent
        return self.stopping and not self.inflight

    def _poke(self) -> None:
        """Wake the dispatchers and the run loop soon (safe to call from sync code)."""
        if self._cond is not None:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    def _complete(self, nid: str, status: Status) -> None:
        self.book.complete(nid, status)
        self._poke()

    def _fail(self, nid: str, info: ErrorInfo) -> None:
        self.book.fail(nid, info)
        self._poke()

    # -- dispatch ----------------------------------------------------------------------

    async def _dispatch(self, account: str) -> None:
        """Hand ready nodes to ``account`` whenever its limiter has a free slot."""
        assert self.pool is not None and self._cond is not None and self.eligible is not None
        pool, eligible = self.pool, self.eligible
        limiter = pool.limiter(account)
        while True:
            async with self._cond:
                await self._cond.wait_for(
                    lambda: eligible.has_work(account, self.queue) or self.stopping
                    or not pool.usable(account)
                )
            if self.stopping or not pool.usable(account):
                return
            permit = await limiter.acquire()
            nid = None
            if not self.stopping and pool.usable(account):
                nid = self.queue.pop_first(lambda n: eligible.can_take(account, n))
            if nid is None or self.states[nid].status != "ready":
                self._release(account, permit, Outcome.UNUSED)
                continue
            self.states[nid].status = "running"
            pool.note_inflight(account)
            self.inflight.start(self._execute(nid, account, permit))

    def _release(self, account: str, permit: Permit, outcome: Outcome) -> None:
        assert self.pool is not None
        self.pool.limiter(account).release(permit, outcome)
        self.pool.note_inflight(account)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.crash = task.exception()
        self._poke()

    async def _execute(self, nid: str, account: str, permit: Permit) -> None:
        """Send ``nid`` unless the cache, another node of this run or another process
        answers it first."""
        key = self.states[nid].key
        assert key is not None
        if await self._answered(nid, account, permit):  # another process may have made it
            return
        if key in self._sending:  # a node of this run sends this very request: wait for it
            self._release(account, permit, Outcome.UNUSED)
            self._requeue(nid, CLAIM_WAIT)
            return
        self._sending.add(key)
        try:
            # References first (uploads, together): the claim then covers only the billed
            # request, well within its lease (store/leases.py).
            request = await self._attempt(nid, account, permit, None, self._resolve(nid, account))
            if request is not None:
                await self._claim_and_send(nid, key, account, permit, request)
        finally:
            self._sending.discard(key)

    async def _answered(self, nid: str, account: str, permit: Permit) -> bool:
        """Whether the cache answers ``nid`` now (the remote, if any, awaited off the
        loop): then it is done and the slot goes back unused."""
        try:
            await self.book.pull(nid)
        except asyncio.CancelledError:
            self._release(account, permit, Outcome.UNUSED)
            raise
        if not self.book.from_cache(nid):
            return False
        self._release(account, permit, Outcome.UNUSED)
        self._complete(nid, "done")
        return True

    async def _resolve(self, nid: str, account: str) -> Request:
        assert self.client is not None and self.pool is not None
        return await self.resolver.request(
            self.plan.nodes[nid], self.states[nid], account, self.client,
            captcha_retry=self.options.captcha_retry,
        )

    async def _claim_and_send(self, nid: str, key: str, account: str, permit: Permit,
                              request: Request) -> None:
        """Claim ``key`` against other processes, then send unless one made it meanwhile."""
        # awaited: a remote claim is a round trip to the object store (a file claim is not)
        if self.claims is not None and not await self.claims.try_claim_async(key):
            # Another process is sending this very request: wait for its result.
            self._release(account, permit, Outcome.UNUSED)
            self.claim_waits += 1
            self._requeue(nid, CLAIM_WAIT)
            return
        try:
            # it may have stored and released between our two looks (remote: a "done" claim)
            if self.claims is not None and await self._answered(nid, account, permit):
                return
            await self._send(nid, account, permit, request)
        finally:
            if self.claims is not None:
                self.claims.release(key)

    async def _send(self, nid: str, account: str, permit: Permit, request: Request) -> None:
        """One request for ``nid`` on ``account``; its answer is stored or handled."""
        state = self.states[nid]
        started = self.now()
        self.api_calls += 1
        attempt = state.attempt.sending()
        verdict = state.verdict
        self.emit(NodeStarted(self.now(), nid, account, attempt, state.attempt.model,
                              verdict.state if verdict else "", verdict.why if verdict else ()))
        result = await self._attempt(nid, account, permit, request, self._call(request))
        if result is None:
            return
        self._release(account, permit, Outcome.OK)
        state.seconds = self.now() - started
        await self._store(nid, account, result)

    async def _attempt(self, nid: str, account: str, permit: Permit, request: Request | None,
                       work: Awaitable[T]) -> T | None:
        """``work`` for ``nid`` on ``account``; None when it failed, the error handled
        (the slot released with what the error says about capacity, the decision carried
        out)."""
        assert self.pool is not None
        try:
            return await work
        except APIError as exc:
            outcome = NodeAttempt.outcome(exc)
            self._release(account, permit, outcome)
            if outcome is Outcome.REJECTED:
                self.rejections += 1
                self.pool.note_rejection(account, exc.status)
            self._handle_error(nid, account, exc, request)
        except FlowpipeError as exc:
            self._release(account, permit, Outcome.ERROR)
            self._fail(nid, ErrorInfo.of(exc))
        except asyncio.CancelledError:
            self._release(account, permit, Outcome.ERROR)
            raise
        return None

    async def _call(self, request: Request) -> ImageResult | UpscaledImage:
        """``POST /images`` or ``POST /images/upscale``."""
        assert self.client is not None
        if isinstance(request, ImageRequest):
            return await self.client.generate(request)
        return await self.client.upscale(request.media_id, request.resolution,
                                         captcha_retry=request.captcha_retry)

    async def _store(self, nid: str, account: str, result: ImageResult | UpscaledImage) -> None:
        """Keep an answer: cache first (nothing finished is lost), then the files."""
        self.inflight.storing()  # from here on a second Ctrl-C waits for this node
        node, state = self.plan.nodes[nid], self.states[nid]
        try:
            gen = describe(result, account=account, model=state.attempt.model,
                           attempts=state.attempt.sent,
                           api_seconds=self.clock.to_api(state.seconds),
                           request=node_request(node, state.ref_hashes))
            blobs = image_bytes(result)
            self.ledger.before_writing(node, gen.images)
            # Hashing, caching and fsync-ed writes off the event loop: at scale they
            # would otherwise delay every other request's dispatch and answer.
            assert state.key is not None
            await self._in_writer(functools.partial(self._persist, nid, state.key, gen, blobs))
        except FlowpipeError as exc:
            self._fail(nid, ErrorInfo.of(exc))
            self.request_stop(f"cannot store results: {exc}", exc)
            return
        state.generation = gen
        self.emit(NodeDone(self.now(), nid, account, state.seconds, state.attempt.sent,
                           state.attempt.model))
        self._complete(nid, "done")

    def _offload(self, work: Callable[[], None]) -> None:
        """Run ``work`` (a cached node's files) in a thread; like an answer being stored,
        the run waits for it and a stop never abandons it."""
        self.inflight.store(self._in_writer(work))

    async def _in_writer(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the threads that store answers."""
        await asyncio.get_running_loop().run_in_executor(self._writer, work)

    def _persist(self, nid: str, key: str, gen: CachedGeneration, blobs: list[bytes]) -> None:
        self.cache.put_generation(key, gen, blobs)
        self.ledger.write_images(self.plan.nodes[nid], gen, blobs)

    # -- errors ------------------------------------------------------------------------

    def _handle_error(self, nid: str, account: str, exc: APIError,
                      request: Request | None) -> None:
        """Carry out what the node's attempt decides about ``exc``."""
        decision = self.states[nid].attempt.after(exc)
        info = ErrorInfo.of(exc)
        action = decision.action
        if action is Action.STOP:
            self._requeue(nid, 0.0)
            self.request_stop(f"stopped by HTTP {exc.status}: {exc.message}", exc)
        elif action is Action.DROP_ACCOUNT:
            self._drop_account(nid, account, exc, info)
        elif action is Action.PAUSE:
            assert isinstance(exc, QuotaError)  # only a quota answer pauses
            self._pause(nid, account, exc, info)
        elif action is Action.REUPLOAD:
            if request is not None:
                self.resolver.refuse(account, request)
            self._retried(nid, account, info, decision)
        elif action in (Action.RETRY, Action.SWITCH_MODEL):
            self._retried(nid, account, info, decision)
        else:
            self._fail(nid, info)

    def _drop_account(self, nid: str, account: str, exc: APIError, info: ErrorInfo) -> None:
        assert self.pool is not None
        if self.pool.drop(account, info):
            self._retried(nid, account, info, Decision(Action.DROP_ACCOUNT))
        elif isinstance(exc, StopRunError):
            self._requeue(nid, 0.0)
            self.request_stop(f"no usable account left: {exc.message}", exc)
        else:
            self._fail(nid, info)
            for other, state in self.states.items():
                if state.status in ("ready", "pending"):
                    self._fail(other, info)

    # -- quota pauses (2026-07) --------------------------------------------------------

    def _pause(self, nid: str, account: str, exc: QuotaError, info: ErrorInfo) -> None:
        """Take out what ``exc`` says is out; ``nid`` waits for an account that can take it.

        A pause that does not hold ``nid`` back on ``account`` (a ``Retry-After: 0``, one
        already over) must not send it there again at once: it waits like a capacity
        retry instead.
        """
        assert self.pool is not None and self.eligible is not None
        kind = classify(exc)
        asks = self.eligible.asks(nid)
        model = asks if kind is ErrorKind.PAUSED_MODEL else None
        out = self.pool.usable_accounts() if kind is ErrorKind.PAUSED_SERVICE else [account]
        for each in out:
            if self.pool.pause(each, model, exc.pause, exc.reason or type(exc).__name__):
                self.inflight.later(exc.pause, self._resume)
        held = not self.pool.available(account, asks)
        delay = 0.0 if held else self.states[nid].attempt.backoff()
        self.emit(NodeRetried(self.now(), nid, account, info, self.clock.to_clock(delay),
                              "paused"))
        self._requeue(nid, delay)

    def _resume(self) -> None:
        assert self.pool is not None
        if self.pool.resume_due():
            self._poke()

    def _stalled(self) -> QuotaStopError | None:
        """The stop to make when waiting for paused accounts is not worth it (Eligibility);
        only asked when nothing is in flight, since an answer still to come counts."""
        if self.eligible is None or self.inflight or self.stopping:
            return None
        return self.eligible.stalled()

    def _retried(self, nid: str, account: str, info: ErrorInfo, decision: Decision) -> None:
        if decision.action is Action.REUPLOAD:
            self.reuploads += 1
        else:
            self.retries += 1
        what = "other-account" if decision.action is Action.DROP_ACCOUNT else decision.action.value
        self.emit(NodeRetried(self.now(), nid, account, info,
                              self.clock.to_clock(decision.delay), what))
        self._requeue(nid, decision.delay)

    def _requeue(self, nid: str, api_delay: float) -> None:
        """Back to the ready queue after ``api_delay`` API seconds, holding no slot."""
        self.states[nid].status = "ready"
        if api_delay <= 0:
            self._push_if_ready(nid)
        else:
            self.inflight.later(api_delay, lambda: self._push_if_ready(nid))

    def _push_if_ready(self, nid: str) -> None:
        if self.states[nid].status == "ready":
            self.queue.push(nid)
            self._poke()
