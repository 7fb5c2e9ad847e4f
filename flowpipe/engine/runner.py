"""A whole run as a library call: plan, pick a backend, schedule, write outputs.

The order matters for money and for safety: the plan is built and (when frozen)
checked against the cache before any request could be sent; images are cached
before they are written out; the manifest and run.json (and the lock and the report,
when asked for) are written even when the run stops early, with whatever finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from flowpipe import exitcodes
from flowpipe.api import FlowClient, Transport
from flowpipe.dialects import dialect
from flowpipe.engine.accounts import AccountPool, find_accounts
from flowpipe.engine.backend import (
    EMBEDDED_TIME_SCALE,
    BackendChoice,
    choose_backend,
    frozen_backend,
    open_backend,
)
from flowpipe.engine.clock import Clock, RunClock
from flowpipe.engine.limiter import LimiterConfig
from flowpipe.engine.nodes import review_hint
from flowpipe.engine.record import RunRecorder
from flowpipe.engine.retry import RetryPolicy
from flowpipe.engine.scheduler import MAX_WAIT, Scheduler, SchedulerOptions
from flowpipe.engine.state import NodeState, summarize
from flowpipe.errors import APIError, FrozenCacheMissError, StopRunError, UsageError
from flowpipe.events import EventSink
from flowpipe.planner import Plan, Recipe, build_plan, check_steps
from flowpipe.results import JsonPacker, NodeResult, Outcome, RunResult
from flowpipe.store.cache import CacheStore, DiskCache, MemoryCache, default_cache_dir
from flowpipe.store.claims import Claims, KeyClaims
from flowpipe.store.leases import RemoteClaims, SharedClaims
from flowpipe.store.lock import (
    Lock,
    LockEntry,
    LockPlace,
    check_lock,
    lock_place,
    read_lock,
    write_lock,
)
from flowpipe.store.manifest import ManifestNode
from flowpipe.store.outputs import default_out_dir
from flowpipe.store.remote import RemoteCache, open_remote
from flowpipe.store.responses import ResponseCache
from flowpipe.store.runlog import RunJournal, RunLog
from flowpipe.why import load_baseline, plan_picks

if TYPE_CHECKING:
    from flowpipe.sim import SimConfig

__all__ = ["RunControl", "RunOptions", "run_recipe", "run_recipe_async"]

SIM_MEDIA = "sim-media"  # the embedded simulator's ids, kept in the cache folder
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """Everything a run can be told; environment defaults are read when it starts.

    A run writes its images, manifest.json and run.json under ``out`` and keeps
    responses in the cache; ``lock`` (RECIPE.lock.json beside the recipe) and
    ``report`` (OUT/report.html) are written only when asked for. A run with
    ``variables``, or on another backend than the committed lock's, writes its lock
    into ``out`` instead, unless ``update_lock`` says to replace the committed one;
    ``lock_path`` names the lock to write (and a frozen run to check) outright.
    ``clock`` is the time source (real time by default; ``VirtualClock`` in tests) and
    ``time_scale`` how many of its seconds make one API second; ``transport`` replaces
    the HTTP transport. ``remote`` is the shared remote cache (``s3://BUCKET/PREFIX``;
    None: the ``FLOWPIPE_REMOTE`` variable, then ``.flowpipe.yaml``);
    ``use_remote=False`` uses none. ``max_wait`` (API seconds) is how long the run
    waits when every account that could go on is paused by a quota (2026-07) before it
    stops; ``captcha_retry`` (1-10, 2026-07) is sent as ``captchaRetry`` instead of
    what the recipe says.
    """

    out: Path | None = None
    variables: Mapping[str, object] = field(default_factory=dict)
    refresh_all: bool = False
    refresh_steps: frozenset[str] = frozenset()
    frozen: bool = False
    accounts: tuple[str, ...] = ()
    backend: Literal["auto", "sim", "useapi"] = "auto"
    base_url: str | None = None
    token: str | None = field(default=None, repr=False)
    time_scale: float | None = None
    clock: Clock | None = None
    transport: Transport | None = None
    sim: SimConfig | None = None
    max_concurrency: int | None = None
    fixed_concurrency: int | None = None
    limiter: LimiterConfig | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache_dir: Path | None = None
    use_cache: bool = True
    report: bool = False
    lock: bool = False
    lock_path: Path | None = None
    update_lock: bool = False
    stop_grace: float = 30.0
    seed: int | None = None
    remote: str | None = None
    use_remote: bool = True
    max_wait: float = MAX_WAIT
    captcha_retry: int | None = None

    def __post_init__(self) -> None:
        """Accept what a Python caller naturally passes: str paths, lists of names."""
        fix = {
            "out": None if self.out is None else Path(self.out),
            "cache_dir": None if self.cache_dir is None else Path(self.cache_dir),
            "lock_path": None if self.lock_path is None else Path(self.lock_path),
            "refresh_steps": frozenset(_names(self.refresh_steps)),
            "accounts": tuple(_names(self.accounts)),
        }
        for name, value in fix.items():
            object.__setattr__(self, name, value)


def _names(value: Iterable[str] | str) -> Iterable[str]:
    return (value,) if isinstance(value, str) else value


class _Interrupted(Exception):
    """A second Ctrl-C cancelled a step outside the send loop (``RunControl.step``)."""


class RunControl:
    """Lets a signal handler reach the running scheduler (Ctrl-C once, then twice).

    Once: nothing new is sent, requests in flight finish, and looking for accounts is
    not retried. Twice: requests in flight are abandoned (answers that arrived are
    kept), and the step the run awaits outside the send loop (looking for accounts,
    the remote's batch pull or its last pushes) is cancelled.
    """

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.interrupted = 0
        self._step: asyncio.Future[Any] | None = None

    def interrupt(self) -> None:
        self.interrupted += 1
        sched = self.scheduler
        if self.interrupted == 1:
            if sched is not None:
                sched.request_stop(
                    "interrupted: waiting for requests in flight (Ctrl-C again to abandon them)"
                )
            return
        if sched is not None:
            sched.abandon()
        if self._step is not None:
            self._step.cancel()

    async def step(self, work: Awaitable[T]) -> T:
        """Await ``work`` so that a second Ctrl-C cancels it: raises ``_Interrupted`` then."""
        task = asyncio.ensure_future(work)
        self._step = task
        try:
            return await task
        except asyncio.CancelledError:
            if task.cancelled() and self.interrupted > 1:
                raise _Interrupted from None
            raise
        finally:
            self._step = None


async def run_recipe_async(
    recipe: str | os.PathLike[str] | Recipe,
    options: RunOptions | None = None,
    *,
    sinks: Sequence[EventSink] = (),
    control: RunControl | None = None,
) -> RunResult:
    """Run ``recipe`` to the end and write its outputs; raise only for bad input."""
    options = options or RunOptions()
    _check_numbers(options)
    source = recipe if isinstance(recipe, Recipe) else Path(recipe)
    path = source.path if isinstance(source, Recipe) else source
    choice = _choose(options, path)
    plan = _plan(source, path, options, choice.kind)
    job = _Job(path, plan, choice, options, sinks)
    control = control or RunControl()
    control.scheduler = job.sched
    return await job.execute(control)


def run_recipe(
    recipe: str | os.PathLike[str] | Recipe,
    options: RunOptions | None = None,
    *,
    sinks: Sequence[EventSink] = (),
) -> RunResult:
    """Synchronous run with Ctrl-C handling: first stops sending, second abandons."""
    control = RunControl()
    loop = asyncio.new_event_loop()
    try:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, control.interrupt)
        return loop.run_until_complete(
            run_recipe_async(recipe, options, sinks=sinks, control=control)
        )
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _choose(options: RunOptions, recipe: Path) -> BackendChoice:
    if options.frozen and (options.refresh_all or options.refresh_steps):
        raise UsageError("a frozen run cannot refresh: the two contradict each other",
                         option="frozen")
    if options.frozen:  # sends nothing, so needs no token: only the backend kind of the keys
        return BackendChoice(
            frozen_backend(options.backend, recipe, options.base_url, options.token), None
        )
    return choose_backend(options.backend, options.base_url, options.token)


def _plan(source: Path | Recipe, path: Path, options: RunOptions, kind: str) -> Plan:
    plan = build_plan(source, overrides=options.variables, backend=kind)
    check_steps(plan, options.refresh_steps, option="refresh_steps")
    _check_dialect_options(plan, options)
    return plan


def _check_numbers(options: RunOptions) -> None:
    """Numbers a caller can get wrong, refused before anything is opened (NaN too)."""
    for name in ("max_concurrency", "fixed_concurrency"):
        value = getattr(options, name)
        if value is not None and not value >= 1:
            raise UsageError(f"must be at least 1, not {value}", option=name)
    if options.time_scale is not None and not options.time_scale > 0:
        raise UsageError(f"must be more than 0, not {options.time_scale}", option="time_scale")
    for name, unit in (("stop_grace", "seconds"), ("max_wait", "API seconds")):
        value = getattr(options, name)
        if not value >= 0:
            raise UsageError(f"must be 0 or more {unit}, not {value}", option=name)


def _check_dialect_options(plan: Plan, options: RunOptions) -> None:
    """``captcha_retry`` makes sense for the recipe's dialect only."""
    if options.captcha_retry is None:
        return
    spoken = dialect(plan.dialect)
    low, high = spoken.captcha_range
    if spoken.captcha_field is None:
        raise UsageError(
            f"{plan.recipe_path.name} speaks api {spoken.name}, which has no captchaRetry",
            hint='captchaRetry needs `api: "2026-07"`', option="captcha_retry",
        )
    if not low <= options.captcha_retry <= high:
        raise UsageError(f"must be {low}-{high}, not {options.captcha_retry}",
                         option="captcha_retry")


def _relative(path: Path, start: Path) -> str:
    """``path`` as seen from ``start`` (POSIX), or absolute when there is no relative way."""
    try:
        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.resolve().as_posix()


def _open_cache(options: RunOptions) -> CacheStore:
    if not options.use_cache:
        return MemoryCache()
    return DiskCache(options.cache_dir or default_cache_dir())


def _open_remote(options: RunOptions, recipe: Path, store: CacheStore) -> RemoteCache | None:
    if not options.use_remote:
        return None
    folder = store.folder if isinstance(store, DiskCache) else None
    try:
        return open_remote(options.remote, start=recipe.parent, cache_folder=folder)
    except BaseException:
        store.close()
        raise


def _limiter_config(options: RunOptions) -> LimiterConfig:
    cap = options.max_concurrency
    base = options.limiter or LimiterConfig()
    max_window = base.max_window if cap is None else min(cap, base.max_window)
    return dataclasses.replace(
        base,
        max_window=max_window,
        min_window=min(base.min_window, max_window),
        initial_window=min(base.initial_window, max_window),
    )


def _check_frozen(path: Path, entries: Iterable[ManifestNode], pending: list[str]) -> None:
    """Frozen: every node must be cached and, if a lock exists, match it."""
    if path.exists():
        locked = read_lock(path)
        for entry in entries:
            if entry.status == "done":
                check_lock(locked, path.name, entry.id, entry.key)
    if pending:
        raise FrozenCacheMissError(
            f"node '{pending[0]}' is not in the cache"
            f" ({len(pending)} node(s) would need a request)",
            hint="make them in a run that may send requests, or restore the cache folder",
            option="frozen",
        )


class _Job:
    """One run from the first look at the cache to the last file written."""

    def __init__(self, recipe: Path, plan: Plan, choice: BackendChoice, options: RunOptions,
                 sinks: Sequence[EventSink]) -> None:
        self.recipe, self.plan, self.choice, self.options = recipe, plan, choice, options
        self.limiter = _limiter_config(options)  # checked before anything is opened
        embedded = choice.base_url is None
        scale = options.time_scale or (EMBEDDED_TIME_SCALE if embedded else 1.0)
        self.clock = RunClock(options.clock, scale=scale)
        self.out = options.out or default_out_dir(plan.name)
        self.store = _open_cache(options)
        self.remote = _open_remote(options, recipe, self.store)
        self.cache = ResponseCache(self.store, remote=self.remote)
        self.recorder = RunRecorder(RunJournal(self.out))
        self.started_at = datetime.now(UTC)
        self.backend_url = choice.base_url or "embedded simulator"
        try:  # what follows can fail (a bad picks file): close what was opened
            self.lock = _lock_place(recipe, plan, options, self.out)
            self.sched = self._scheduler(sinks)
        except BaseException:
            if self.remote is not None:
                self.remote.close()
            self.store.close()
            raise

    def _scheduler(self, sinks: Sequence[EventSink]) -> Scheduler:
        options = self.options
        folder = self.store.folder if isinstance(self.store, DiskCache) else None
        claims: Claims | None = KeyClaims(folder / "claims") if folder is not None else None
        if self.remote is not None:
            claims = SharedClaims(claims, RemoteClaims(self.remote))
        return Scheduler(
            self.plan,
            cache=self.cache,
            out=self.out,
            clock=self.clock,
            claims=claims,
            sinks=[self.recorder, *sinks],
            picks=plan_picks(self.plan),
            options=SchedulerOptions(
                refresh_all=options.refresh_all,
                refresh_steps=options.refresh_steps,
                stop_grace=options.stop_grace,
                seed=options.seed,
                retry=options.retry,
                max_wait=options.max_wait,
                captcha_retry=options.captcha_retry,
            ),
            baseline=load_baseline(list(dict.fromkeys([self.lock.path, self.lock.committed])),
                                   self.out),
        )

    async def execute(self, control: RunControl) -> RunResult:
        pending = await self._prime(control)
        try:
            if pending and not self.sched.stopping:
                await self._send_all(control)
            elif pending:  # a Ctrl-C before anything was sent
                self.sched.end("run interrupted before this node was sent")
        except _Interrupted:  # a second Ctrl-C while looking for accounts
            self.sched.end("run interrupted before this node was sent")
        except APIError as exc:  # before the first generation: GET /accounts said no
            self.sched.stop_error = exc
            self.sched.end(f"run stopped: {exc.message}")
        finally:
            if self.remote is not None:  # claim releases and pushes end first: run.json counts
                with contextlib.suppress(_Interrupted):  # unpushed keys stay noted as pending
                    await control.step(self.remote.aclose())
            try:
                result = self._finish(control)
            finally:
                self.store.close()
        return result

    async def _prime(self, control: RunControl) -> list[str]:
        """What needs a request, decided from the cache alone before anything could be
        sent (a frozen run raises here); nothing when a second Ctrl-C cut the remote's
        batch pull short."""
        try:
            if self.remote is not None:  # one batch from the remote, so prime reads locally
                await control.step(self.remote.prepare(self.cache, self.plan, self.lock.path))
            pending = self.sched.prime()
            if self.options.frozen:
                _check_frozen(self.lock.path, self.sched.ledger.entries(), pending)
        except _Interrupted:  # the cache is not read: the remote may be what hangs
            self.sched.end("run interrupted before this node was sent", settle=False)
            return []
        except BaseException:
            if self.remote is not None:
                await self.remote.aclose()
            self.store.close()
            self.recorder.journal.discard()  # no run.json for a run that never started
            self.sched.ledger.close()
            raise
        return pending

    async def _send_all(self, control: RunControl) -> None:
        options = self.options
        media = self.store.folder / SIM_MEDIA if isinstance(self.store, DiskCache) else None
        async with open_backend(self.choice, time_scale=self.clock.scale, sim=options.sim,
                                dialect=self.plan.dialect, media_folder=media) as backend:
            self.backend_url = backend.base_url
            async with FlowClient(base_url=backend.base_url, token=backend.token,
                                  transport=options.transport, dialect=self.plan.dialect,
                                  sleep=self.clock.api_sleep) as client:
                accounts = await control.step(find_accounts(
                    client,
                    chosen=options.accounts or self.plan.accounts,
                    policy=options.retry,
                    clock=self.clock,
                    rng=random.Random(options.seed),
                    stopped=lambda: self.sched.stopping,
                ))
                pool = AccountPool(accounts, clock=self.clock, sinks=self.sched.sinks,
                                   limiter_config=self.limiter,
                                   fixed_window=options.fixed_concurrency)
                await self.sched.run(client, pool)

    def _finish(self, control: RunControl) -> RunResult:
        """Write what the run leaves behind and say how it ended."""
        outcome, message = _outcome(self.sched, control)
        self.sched.ledger.finish(self.cache)
        log = self._log(outcome, message)
        self.recorder.flush()
        run_json = JsonPacker()
        self.recorder.journal.write(log, also=run_json.write)
        lock = None
        ledger = self.sched.ledger
        if self.options.lock and not self.options.frozen:
            lock = _write_lock(self.lock.path, self.plan, self.sched.states, ledger.entries())
        report = None
        if self.options.report:
            from flowpipe.report import write_report

            shared = self.store.thumbs if isinstance(self.store, DiskCache) else None
            report = write_report(self.out, thumb_cache=shared)
        result = _result(self.plan, self.sched.states, ledger.entries(), self.out,
                         outcome=outcome, message=message, log=log, run_json=run_json)
        ledger.close()
        return dataclasses.replace(result, lock=lock, report=report,
                                   lock_note=self.lock.moved if lock else None,
                                   removed=self.sched.ledger.removed)

    def _log(self, outcome: Outcome, message: str | None) -> RunLog:
        sched = self.sched
        finished_at = datetime.now(UTC)
        pauses = tuple(self.recorder.pauses())  # an extension is no new pause
        summary = summarize(sched.states, images=sched.ledger.images)
        summary.update(
            api_calls=sched.api_calls,
            uploads=sched.uploads,
            retries=sched.retries,
            reuploads=sched.reuploads,
            rejections=sched.rejections,
            pauses=len(pauses),
            waited_for_other_runs=sched.claim_waits,
            corrupt_cache_entries=self.cache.corrupt_entries,
            removed_files=sched.ledger.removed,
        )
        return RunLog(
            recipe_name=self.plan.name,
            recipe_path=self.plan.recipe_path.name,
            recipe_file=_relative(self.recipe, self.out),
            backend_kind=self.plan.backend,
            base_url=self.backend_url,
            started_at=_stamp(self.started_at),
            finished_at=_stamp(finished_at),
            wall_seconds=round((finished_at - self.started_at).total_seconds(), 3),
            outcome=outcome,
            exit_code=exitcodes.for_outcome(outcome),
            message=message,
            summary=summary,
            nodes={},  # streamed: the journal has them (and the timeline)
            window=(),
            inflight=(),
            rejections=(),
            remote=self.remote.summary() if self.remote is not None else None,
            pauses=pauses,
        )


def _stamp(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _outcome(sched: Scheduler, control: RunControl) -> tuple[Outcome, str | None]:
    if control.interrupted:
        return "interrupted", "interrupted"
    if isinstance(sched.stop_error, StopRunError):
        return "stopped", str(sched.stop_error)
    if sched.stop_error is not None:  # e.g. a full disk: the run failed, the API did not stop it
        return "failed", str(sched.stop_error)
    if sched.stop_reason is not None:
        return "failed", sched.stop_reason
    bad = sum(1 for s in sched.states.values() if s.status not in ("done", "waiting"))
    if bad:
        return "failed", f"{bad} node(s) did not finish"
    waiting = [nid for nid, s in sched.states.items() if s.status == "waiting"]
    if waiting:
        return "waiting", (f"{len(waiting)} node(s) wait for review: {', '.join(waiting[:5])}"
                           f"{', ...' if len(waiting) > 5 else ''}; "
                           f"{review_hint(sched.ledger.out)}")
    return "done", None


def _lock_place(recipe: Path, plan: Plan, options: RunOptions, out: Path) -> LockPlace:
    """Where this run's lock goes: beside the recipe, unless the run deviates from it."""
    return lock_place(recipe, out, backend=plan.backend, variables=bool(options.variables),
                      chosen=options.lock_path, update=options.update_lock)


def _write_lock(path: Path, plan: Plan, states: Mapping[str, NodeState],
                entries: Iterable[ManifestNode]) -> Path:
    """Each finished node's key, images and request; a node not finished keeps its old
    entry, an unchanged one its old text. A lock with nothing new is not rewritten."""
    try:
        old: Lock | None = read_lock(path)
    except FrozenCacheMissError:  # none yet, or unreadable: this run's entries only
        old = None
    finished = {
        entry.id: LockEntry(entry.key, tuple(img.sha256 for img in entry.images),
                            entry.request)
        for entry in entries
        if states[entry.id].status == "done" and entry.request is not None
    }
    new = (old or Lock(recipe=None, backend=None)).merge(plan, finished)
    if old is None or not new.same_entries(old):
        write_lock(path, new)
    return path


def _result(plan: Plan, states: dict[str, NodeState], entries: Iterable[ManifestNode],
            out: Path, *, outcome: Outcome, message: str | None, log: RunLog,
            run_json: JsonPacker) -> RunResult:
    """The run's result. The run is over: each node's state leaves ``states`` as its
    result is made, so the end of a long run holds one of the two, not both."""
    nodes = {}
    for entry in entries:
        nid = entry.id
        node, state = plan.nodes[nid], states.pop(nid)
        done = state.status == "done"
        nodes[nid] = NodeResult(
            id=nid,
            step=node.step,
            variant=dict(node.variant),
            state=state.status if state.status in ("done", "failed", "waiting") else "skipped",
            reason=state.error.message if state.error and not done else None,
            cache_hit=state.cache_hit,
            key=state.key,
            images=tuple(out / img.path for img in entry.images) if done else (),
            model_used=entry.model_used if done else None,
            error=state.error if not done else None,
            change=state.verdict.state if state.verdict else None,
            why=state.verdict.why if state.verdict else (),
        )
    return RunResult(
        ok=outcome == "done",
        exit_code=exitcodes.for_outcome(outcome),
        nodes=nodes,
        images=tuple(img for result in nodes.values() for img in result.images),
        outcome=outcome,
        message=message,
        out=out,
        summary=dict(log.summary),
        run_json=run_json.packed(),
        remote=log.remote,
    )
