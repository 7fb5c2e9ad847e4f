"""Run a plan: ready nodes in critical-path order, one adaptive limiter per account.

A node becomes ready when every image it references exists; only then is its real
cache key known (DESIGN section 3). Cached nodes finish at once; the rest go to a
priority heap, and one dispatcher per account takes work whenever its limiter grants
a slot. Failures follow ``retry.decide``; a retry waits off-slot, so a rejected
request never holds capacity while it sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import io
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from flowpipe.api import FlowClient, ImageRequest, ImageResult
from flowpipe.errors import (
    APIError,
    CapacityError,
    FlowpipeError,
    ModerationError,
    ResponseError,
    StopRunError,
    TransportError,
)
from flowpipe.plan import Node, Plan, Ref, request_key
from flowpipe.run.accounts import AccountPool
from flowpipe.run.events import (
    ErrorInfo,
    Event,
    EventSink,
    NodeCached,
    NodeDone,
    NodeFailed,
    NodeRetried,
    NodeSkipped,
    NodeStarted,
    RunStarted,
    RunStopping,
    Uploaded,
    broadcast,
)
from flowpipe.run.limiter import Outcome, Permit
from flowpipe.run.retry import Action, Attempts, RetryPolicy, decide
from flowpipe.store.claims import Claims
from flowpipe.store.outputs import OutputWriter
from flowpipe.store.responses import CachedGeneration, CachedImage, ResponseCache, sha256_hex

__all__ = ["NodeResult", "Scheduler", "SchedulerOptions"]

Status = Literal["pending", "ready", "running", "done", "failed", "skipped"]
CLAIM_WAIT = 1.0  # API seconds between looks at a key another process is making


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerOptions:
    """How the scheduler behaves; API-time delays are multiplied by ``time_scale``."""

    refresh_all: bool = False
    refresh_steps: frozenset[str] = frozenset()
    time_scale: float = 1.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stop_grace: float = 30.0
    seed: int | None = None


@dataclass(slots=True)
class NodeResult:
    """Where one node ended up; the manifest and run.json are built from these."""

    status: Status = "pending"
    key: str | None = None
    ref_hashes: dict[Ref, str] = field(default_factory=dict)
    generation: CachedGeneration | None = None
    cache_hit: bool = False
    error: ErrorInfo | None = None
    account: str | None = None
    seconds: float = 0.0
    attempts: Attempts = field(default_factory=Attempts)
    model: str = ""
    force_upload: bool = False


class Scheduler:
    """One run of one plan. Create, ``await run()``, read ``results``."""

    def __init__(
        self,
        plan: Plan,
        *,
        cache: ResponseCache,
        writer: OutputWriter,
        claims: Claims | None = None,
        sinks: Sequence[EventSink] = (),
        options: SchedulerOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.cache = cache
        self.writer = writer
        self.claims = claims
        self.sinks = list(sinks)
        self.options = options or SchedulerOptions()
        self.clock = clock
        self._t0 = clock()
        self._rng = random.Random(self.options.seed)
        self.results: dict[str, NodeResult] = {
            nid: NodeResult(model=node.model) for nid, node in plan.nodes.items()
        }
        self._order = {nid: i for i, nid in enumerate(plan.nodes)}
        self._cp = plan.critical_path()
        self._children: dict[str, list[str]] = {nid: [] for nid in plan.nodes}
        self._missing: dict[str, int] = {}
        for nid, node in plan.nodes.items():
            self._missing[nid] = len(set(node.deps))
            for dep in set(node.deps):
                self._children[dep].append(nid)
        self._heap: list[tuple[float, int, str]] = []
        self._cond: asyncio.Condition | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._uploads: dict[tuple[str, str], asyncio.Future[str]] = {}
        self._open = len(plan.nodes)
        self._primed = False
        self.client: FlowClient | None = None
        self.pool: AccountPool | None = None
        self.stop_error: FlowpipeError | None = None
        self.stop_reason: str | None = None
        self.crash: BaseException | None = None
        self.stopping = False
        self.api_calls = 0
        self.uploads = 0
        self.retries = 0
        self.rejections = 0
        self.claim_waits = 0

    # -- events and time ---------------------------------------------------------

    def now(self) -> float:
        return self.clock() - self._t0

    def emit(self, event: Event) -> None:
        broadcast(self.sinks, event)

    # -- the run -----------------------------------------------------------------

    def prime(self) -> list[str]:
        """Answer every node the cache can, without sending anything.

        Returns the nodes that are ready and need a request. Nodes behind those are
        not looked at yet: their keys depend on images that do not exist. This is
        what ``--frozen`` checks before any request could be sent.
        """
        if not self._primed:
            self._primed = True
            self.emit(RunStarted(self.now(), len(self.plan.nodes), self.plan.backend))
            for nid in self.plan.nodes:
                if self._missing[nid] == 0 and self.results[nid].status == "pending":
                    status = self._prepare(nid)
                    if status is not None:
                        self._complete(nid, status)
        return [nid for _, _, nid in sorted(self._heap)]

    async def run(self, client: FlowClient, pool: AccountPool) -> dict[str, NodeResult]:
        """Run every node to done, failed or skipped; return the results."""
        self.client = client
        self.pool = pool
        self._cond = asyncio.Condition()
        self.prime()
        dispatchers = [asyncio.create_task(self._dispatch(account)) for account in pool.accounts]
        try:
            async with self._cond:
                await self._cond.wait_for(lambda: self._finished() or self.stopping)
        finally:
            self.stopping = True
            await self._notify()
            for task in dispatchers:
                task.cancel()
            await asyncio.gather(*dispatchers, return_exceptions=True)
            if self._tasks:
                await self._drain(self.options.stop_grace)
            self.skip_unfinished("run stopped before this node was sent")
            if self.claims is not None:
                self.claims.release_all()
        if self.crash is not None:
            raise self.crash
        return self.results

    def abandon(self) -> None:
        """Cancel requests in flight (a second Ctrl-C); nothing partial is written."""
        for task in list(self._tasks):
            task.cancel()

    def _finished(self) -> bool:
        if self._open == 0 or self.crash is not None:
            return True
        if self.pool is not None and not self.pool.usable_accounts() and not self._tasks:
            return True  # every account was dropped: what is left can never be sent
        return self.stopping and not self._tasks

    async def _drain(self, grace: float) -> None:
        """Let in-flight requests finish (and be stored) for up to ``grace`` seconds."""
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def request_stop(self, reason: str, error: FlowpipeError | None = None) -> None:
        """Send nothing new; in-flight requests finish and are stored."""
        if not self.stopping:
            self.stopping = True
            self.stop_reason = reason
            info = _error_info(error) if error is not None else None
            self.emit(RunStopping(self.now(), reason, info))
        if error is not None and self.stop_error is None:
            self.stop_error = error
        self._poke()

    def _poke(self) -> None:
        """Wake the dispatchers and the run loop soon (safe to call from sync code)."""
        if self._cond is not None:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    def skip_unfinished(self, reason: str) -> None:
        """Mark every node that has not finished as skipped, with ``reason``."""
        for nid, res in self.results.items():
            if res.status in ("pending", "ready", "running"):
                why = reason
                if res.status == "running":
                    why = "run stopped while this request was in flight (it may still be billed)"
                res.status = "skipped"
                res.error = ErrorInfo(type="Skipped", message=why)
                self.emit(NodeSkipped(self.now(), nid, why))

    # -- readiness and the cache ---------------------------------------------------

    def _prepare(self, nid: str) -> Status | None:
        """All upstream images exist: compute the real key, then answer from cache or queue.

        Returns the node's final status when it finished here (a cache hit, or a
        reference that cannot resolve), None when it was queued.
        """
        node = self.plan.nodes[nid]
        res = self.results[nid]
        try:
            res.ref_hashes = self._ref_hashes(node)
        except LookupError as exc:
            res.error = ErrorInfo(type="ReferenceError", message=str(exc))
            self.emit(NodeFailed(self.now(), nid, res.error))
            return "failed"
        res.key = request_key(node, res.ref_hashes, self.plan.backend)
        if self._from_cache(nid):
            return "done"
        res.status = "ready"
        self._push(nid)
        return None

    def _from_cache(self, nid: str) -> bool:
        """Finish ``nid`` from the cache if its key is there (and not being refreshed)."""
        node = self.plan.nodes[nid]
        res = self.results[nid]
        if res.key is None or self._refreshing(node):
            return False
        hit = self.cache.get_generation(res.key)
        if hit is None:
            return False
        gen, blobs = hit
        self._write_outputs(node, blobs)
        res.cache_hit = True
        res.generation = gen
        res.model = gen.model_used
        res.account = gen.account
        self.emit(NodeCached(self.now(), nid))
        return True

    def _refreshing(self, node: Node) -> bool:
        return self.options.refresh_all or node.step in self.options.refresh_steps

    def _ref_hashes(self, node: Node) -> dict[Ref, str]:
        refs = node.refs
        hashes: dict[Ref, str] = {}
        for ref in refs:
            if ref.kind == "asset":
                assert ref.asset is not None
                hashes[ref] = self.plan.assets[ref.asset].sha256
                continue
            assert ref.node is not None and ref.index is not None
            gen = self.results[ref.node].generation
            if gen is None:  # pragma: no cover - readiness guarantees it
                raise LookupError(f"{ref.text}: node '{ref.node}' has no images")
            if ref.index >= len(gen.images):
                raise LookupError(
                    f"{ref.text}: node '{ref.node}' returned {len(gen.images)} image(s), "
                    f"so index {ref.index} does not exist"
                )
            hashes[ref] = gen.images[ref.index].sha256
        return hashes

    def _push(self, nid: str) -> None:
        heapq.heappush(self._heap, (-self._cp.get(nid, 0.0), self._order[nid], nid))
        self._poke()

    def _complete(self, nid: str, status: Status) -> None:
        """Mark a node finished and release (or skip) what waits on it."""
        stack = [(nid, status)]
        while stack:
            cur, st = stack.pop()
            res = self.results[cur]
            res.status = st
            self._open -= 1
            for child in self._children[cur]:
                if self.results[child].status != "pending":
                    continue
                if st != "done":
                    because = f"upstream node '{cur}' {st}"
                    self.results[child].error = ErrorInfo(type="Skipped", message=because)
                    self.emit(NodeSkipped(self.now(), child, because))
                    stack.append((child, "skipped"))
                    continue
                self._missing[child] -= 1
                if self._missing[child] == 0:
                    child_status = self._prepare(child)
                    if child_status is not None:
                        stack.append((child, child_status))
        self._poke()

    def _fail(self, nid: str, info: ErrorInfo) -> None:
        self.results[nid].error = info
        self.emit(NodeFailed(self.now(), nid, info))
        self._complete(nid, "failed")

    # -- dispatch ------------------------------------------------------------------

    async def _dispatch(self, account: str) -> None:
        """Hand ready nodes to ``account`` whenever its limiter has a free slot."""
        assert self.pool is not None and self._cond is not None
        pool = self.pool
        limiter = pool.limiter(account)
        while True:
            async with self._cond:
                await self._cond.wait_for(
                    lambda: bool(self._heap) or self.stopping or not pool.usable(account)
                )
            if self.stopping or not pool.usable(account):
                return
            permit = await limiter.acquire()
            if not self._heap or self.stopping or not pool.usable(account):
                self._release(account, permit, Outcome.ERROR)
                continue
            _, _, nid = heapq.heappop(self._heap)
            if self.results[nid].status != "ready":
                self._release(account, permit, Outcome.ERROR)
                continue
            self.results[nid].status = "running"
            pool.note_inflight(account, self.now())
            task = asyncio.create_task(self._execute(nid, account, permit))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _release(self, account: str, permit: Permit, outcome: Outcome) -> None:
        assert self.pool is not None
        self.pool.limiter(account).release(permit, outcome)
        self.pool.note_inflight(account, self.now())

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.crash = task.exception()
        self._poke()

    async def _execute(self, nid: str, account: str, permit: Permit) -> None:
        res = self.results[nid]
        started = self.clock()
        if self._from_cache(nid):  # another process may have made it since it became ready
            self._release(account, permit, Outcome.ERROR)
            self._complete(nid, "done")
            return
        assert res.key is not None
        if self.claims is not None:
            # off the loop: a remote claim is a round trip to the object store
            if not await asyncio.to_thread(self.claims.try_claim, res.key):
                # Another process is sending this very request: wait for its result.
                self._release(account, permit, Outcome.ERROR)
                self.claim_waits += 1
                self._requeue(nid, CLAIM_WAIT * self.options.time_scale)
                return
            if self._from_cache(nid):  # it stored and released between our two looks
                self.claims.release(res.key)
                self._release(account, permit, Outcome.ERROR)
                self._complete(nid, "done")
                return
        try:
            await self._send(nid, account, permit, started)
        finally:
            if self.claims is not None:
                self.claims.release(res.key)

    async def _send(self, nid: str, account: str, permit: Permit, started: float) -> None:
        """One request for ``nid`` on ``account``; its answer is stored or handled."""
        node = self.plan.nodes[nid]
        res = self.results[nid]
        try:
            assert self.client is not None
            request = await self._request_for(node, res, account)
            res.attempts.sent += 1
            self.api_calls += 1
            self.emit(NodeStarted(self.now(), nid, account, res.attempts.sent, res.model))
            result = await self.client.generate(request)
        except APIError as exc:
            rejected = isinstance(exc, CapacityError | TransportError)
            self._release(account, permit, Outcome.REJECTED if rejected else Outcome.OK)
            if rejected and self.pool is not None:
                self.rejections += 1
                self.pool.note_rejection(account, exc.status, self.now())
            self._handle_error(nid, account, exc)
            return
        except FlowpipeError as exc:
            self._release(account, permit, Outcome.ERROR)
            self._fail(nid, _error_info(exc))
            return
        except asyncio.CancelledError:
            self._release(account, permit, Outcome.ERROR)
            raise
        self._release(account, permit, Outcome.OK)
        res.seconds = self.clock() - started
        try:
            # Hashing, caching and fsync-ed writes off the event loop: at scale they
            # would otherwise delay every other request's dispatch and answer.
            gen = self._record(res, account, result)
            assert res.key is not None
            blobs = [img.data for img in result.images]
            await asyncio.shield(asyncio.to_thread(self._persist, node, res.key, gen, blobs))
            res.generation = gen
            res.account = account
        except FlowpipeError as exc:
            self._fail(nid, _error_info(exc))
            self.request_stop(f"cannot store results: {exc}", exc)
            return
        self.emit(NodeDone(self.now(), nid, account, res.seconds, res.attempts.sent, res.model))
        self._complete(nid, "done")

    def _record(self, res: NodeResult, account: str, result: ImageResult) -> CachedGeneration:
        """What the cache keeps about a response: image hashes, ids, sizes and timings."""
        images = []
        for img in result.images:
            with Image.open(io.BytesIO(img.data)) as im:  # reads the header only
                width, height = im.size
            images.append(
                CachedImage(
                    sha256=sha256_hex(img.data),
                    seed=img.seed,
                    media_generation_id=img.media_generation_id,
                    width=width,
                    height=height,
                )
            )
        return CachedGeneration(
            images=tuple(images),
            account=account,
            model_used=res.model,
            attempts=res.attempts.sent,
            generation_seconds=round(res.seconds / max(self.options.time_scale, 1e-9), 3),
        )

    def _persist(self, node: Node, key: str, gen: CachedGeneration, blobs: list[bytes]) -> None:
        """Cache first (nothing finished is lost), then the output files."""
        self.cache.put_generation(key, gen, blobs)
        self._write_outputs(node, blobs)

    def _write_outputs(self, node: Node, blobs: list[bytes]) -> None:
        for index, data in enumerate(blobs):
            self.writer.write_bytes(node.out_dir / f"{index}.jpg", data)

    # -- references ------------------------------------------------------------------

    async def _request_for(self, node: Node, res: NodeResult, account: str) -> ImageRequest:
        """The API request, with each reference as a mediaGenerationId valid on ``account``."""
        style = await self._media_id(node.style, res, account) if node.style else None
        context = tuple([await self._media_id(ref, res, account) for ref in node.context])
        return ImageRequest(
            prompt=node.prompt,
            model=res.model,
            aspect_ratio=node.aspect_ratio,
            count=node.count,
            seed=node.seed,
            email=account if self.pool is None or self.pool.send_email else None,
            style_reference=style,
            context_references=context,
        )

    async def _media_id(self, ref: Ref, res: NodeResult, account: str) -> str:
        sha = res.ref_hashes[ref]
        if ref.kind == "node" and not res.force_upload:
            assert ref.node is not None and ref.index is not None
            gen = self.results[ref.node].generation
            if gen is not None and gen.account == account:
                return gen.images[ref.index].media_generation_id
        cached = None if res.force_upload else self.cache.get_upload(account, sha)
        if cached:
            return cached
        pending = self._uploads.get((account, sha))
        if pending is not None and not res.force_upload:
            return await asyncio.shield(pending)  # another node is uploading these bytes
        key = (account, sha)
        task = asyncio.ensure_future(self._upload(ref, sha, account))
        self._uploads[key] = task

        def forget(done: asyncio.Future[str]) -> None:
            if self._uploads.get(key) is done:
                del self._uploads[key]

        task.add_done_callback(forget)
        return await asyncio.shield(task)

    async def _upload(self, ref: Ref, sha: str, account: str) -> str:
        """Upload the bytes behind ``ref`` to ``account`` once and remember the id."""
        data, mime = self._bytes_of(ref, sha)
        assert self.client is not None
        uploaded = await self.client.upload_asset(account, data, mime)
        self.uploads += 1
        self.cache.put_upload(account, sha, uploaded.media_generation_id)
        self.emit(Uploaded(self.now(), account, sha))
        return uploaded.media_generation_id

    def _bytes_of(self, ref: Ref, sha: str) -> tuple[bytes, str]:
        if ref.kind == "asset":
            assert ref.asset is not None
            asset = self.plan.assets[ref.asset]
            data = asset.path.read_bytes()
            if sha256_hex(data) != sha:
                raise FlowpipeError(
                    f"asset '{ref.asset}' changed on disk during the run",
                    hint="run again",
                )
            return data, asset.mime
        data_or_none = self.cache.get_image(sha)
        if data_or_none is None:
            raise FlowpipeError(f"{ref.text}: image {sha[:12]} is missing from the cache")
        return data_or_none, "image/jpeg"

    # -- errors ------------------------------------------------------------------------

    def _handle_error(self, nid: str, account: str, exc: APIError) -> None:
        node = self.plan.nodes[nid]
        res = self.results[nid]
        att = res.attempts
        if isinstance(exc, CapacityError):
            att.capacity += 1
        elif isinstance(exc, TransportError | ResponseError):
            att.transport += 1
        elif isinstance(exc, ModerationError):
            att.moderation += 1
        fallback = self._fallback(node, res)
        decision = decide(
            exc,
            att,
            policy=self.options.retry,
            moderation_retries=node.moderation_retries,
            can_switch=fallback is not None,
            rng=self._rng,
        )
        info = _error_info(exc)
        action = decision.action
        if action is Action.STOP:
            self._requeue(nid, 0.0)
            self.request_stop(f"stopped by HTTP {exc.status}: {exc.message}", exc)
            return
        if action is Action.DROP_ACCOUNT:
            assert self.pool is not None
            left = self.pool.drop(account, info)
            if not left:
                if isinstance(exc, StopRunError):
                    self._requeue(nid, 0.0)
                    self.request_stop(f"no usable account left: {exc.message}", exc)
                else:
                    self._fail(nid, info)
                    self._fail_all_open(info)
                return
            self._retried(nid, account, info, 0.0, "other-account")
            return
        if action is Action.SWITCH_MODEL:
            assert fallback is not None
            att.switched = True
            att.moderation = 0
            res.model = fallback
            self._retried(nid, account, info, 0.0, "switch-model")
            return
        if action is Action.REUPLOAD:
            att.reuploaded = True
            res.force_upload = True
            self._retried(nid, account, info, 0.0, "re-upload")
            return
        if action is Action.RETRY:
            self._retried(nid, account, info, decision.delay, "retry")
            return
        self._fail(nid, info)

    def _fallback(self, node: Node, res: NodeResult) -> str | None:
        """The model to switch to after moderation; the plan already checked it fits."""
        return None if node.fallback_model == res.model else node.fallback_model

    def _retried(self, nid: str, account: str, info: ErrorInfo, delay: float, what: str) -> None:
        self.retries += 1
        scaled = delay * self.options.time_scale
        self.emit(NodeRetried(self.now(), nid, account, info, scaled, what))
        self._requeue(nid, scaled)

    def _requeue(self, nid: str, delay: float) -> None:
        """Back to the heap after ``delay`` seconds, holding no slot meanwhile."""
        self.results[nid].status = "ready"
        if delay <= 0:
            self._push(nid)
            return
        def back() -> None:
            if self.results[nid].status == "ready":
                self._push(nid)

        asyncio.get_running_loop().call_later(delay, back)

    def _fail_all_open(self, info: ErrorInfo) -> None:
        for nid, res in self.results.items():
            if res.status in ("ready", "pending"):
                self._fail(nid, info)


def _error_info(exc: FlowpipeError) -> ErrorInfo:
    if isinstance(exc, APIError):
        return ErrorInfo(
            type=type(exc).__name__,
            message=exc.message,
            status=exc.status,
            reason=exc.reason,
            hint=exc.hint,
        )
    return ErrorInfo(type=type(exc).__name__, message=exc.message, hint=exc.hint)


def summarize(results: Mapping[str, NodeResult]) -> dict[str, int]:
    """Counts by outcome, as the JSON summary and run.json show them."""
    counts = {"nodes": len(results), "done": 0, "cached": 0, "failed": 0, "skipped": 0}
    images = 0
    for res in results.values():
        if res.status in counts:
            counts[res.status] += 1
        if res.cache_hit:
            counts["cached"] += 1
        if res.generation is not None:
            images += len(res.generation.images)
    counts["images"] = images
    return counts
