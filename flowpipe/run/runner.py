"""``flowpipe run`` as a library call: plan, pick a backend, schedule, write outputs.

The order matters for money and for safety: the plan is built and (under
``--frozen``) checked against the cache before any request could be sent; images
are cached before they are written out; manifest, run.json, lock and report are
written even when the run stops early, with whatever finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import random
import secrets
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from flowpipe.api import FlowClient
from flowpipe.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STOPPED,
    CapacityError,
    FrozenCacheMissError,
    SessionError,
    StopRunError,
    TransportError,
    UsageError,
)
from flowpipe.plan import Plan, build_plan
from flowpipe.run.accounts import AccountPool
from flowpipe.run.events import EventSink
from flowpipe.run.limiter import LimiterConfig
from flowpipe.run.record import RunRecorder
from flowpipe.run.retry import RetryPolicy
from flowpipe.run.scheduler import NodeResult, Scheduler, SchedulerOptions, summarize
from flowpipe.sim import SimConfig, running_sim
from flowpipe.store.cache import CacheStore, DiskCache, MemoryCache, default_cache_dir
from flowpipe.store.claims import Claims, KeyClaims
from flowpipe.store.leases import RemoteClaims, SharedClaims
from flowpipe.store.manifest import (
    build_lock,
    build_manifest,
    check_lock,
    lock_path,
    read_lock,
)
from flowpipe.store.outputs import OutputWriter
from flowpipe.store.remote import RemoteCache, open_remote
from flowpipe.store.responses import ResponseCache

__all__ = ["RunControl", "RunOptions", "RunResult", "run_recipe", "run_recipe_async"]

log = logging.getLogger("flowpipe.run")

REAL_API_URL = "https://api.useapi.net/v1/google-flow"
EMBEDDED_TIME_SCALE = 0.01
ACCOUNT_TRIES = 5  # GET /accounts on 429/503/timeouts, U(5, 10) API s apart
Outcome = Literal["done", "failed", "stopped", "frozen", "interrupted"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """Everything ``flowpipe run`` can be told; environment defaults are read at run time."""

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
    sim: SimConfig | None = None
    max_concurrency: int | None = None
    fixed_concurrency: int | None = None
    limiter: LimiterConfig | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache_dir: Path | None = None
    use_cache: bool = True
    report: bool = True
    lock: bool = True
    stop_grace: float = 30.0
    seed: int | None = None
    remote: str | None = None  # s3://BUCKET/PREFIX; None: FLOWPIPE_REMOTE, then .flowpipe.yaml
    use_remote: bool = True


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended and where its outputs are."""

    outcome: Outcome
    exit_code: int
    out: Path
    summary: Mapping[str, Any]
    message: str | None
    run_info: Mapping[str, Any]


class RunControl:
    """Lets a signal handler reach the running scheduler (Ctrl-C once, then twice)."""

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.interrupted = 0

    def interrupt(self) -> None:
        self.interrupted += 1
        sched = self.scheduler
        if sched is None:
            return
        if self.interrupted == 1:
            sched.request_stop(
                "interrupted: waiting for requests in flight (Ctrl-C again to abandon them)"
            )
        else:
            sched.abandon()


@dataclass(frozen=True, slots=True)
class _Backend:
    kind: str
    base_url: str
    token: str = field(repr=False)
    embedded: bool
    time_scale: float


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def choose_backend(options: RunOptions) -> tuple[str, str | None, str | None]:
    """(kind, base_url, token); base_url None means the embedded simulator."""
    token = options.token if options.token is not None else os.environ.get("USEAPI_TOKEN")
    base_url = options.base_url or os.environ.get("FLOWPIPE_API_URL")
    if options.backend == "sim" and not base_url:
        return "sim", None, None
    if options.backend == "auto" and not token:
        return "sim", None, None
    if not token:
        raise UsageError(
            "no API token: set USEAPI_TOKEN",
            hint="or drop --backend useapi to run on the embedded simulator",
        )
    base_url = base_url or REAL_API_URL
    if options.backend == "useapi":
        return "useapi", base_url, token
    if options.backend == "sim":
        return "sim", base_url, token
    return ("sim" if is_loopback(base_url) else "useapi"), base_url, token


def frozen_backend(options: RunOptions, recipe: Path) -> str:
    """The backend kind a ``--frozen`` run checks keys for: ``--backend``, else the lock's."""
    if options.backend != "auto":
        return options.backend
    with contextlib.suppress(OSError, ValueError, AttributeError):
        locked = json.loads(lock_path(recipe).read_text(encoding="utf-8")).get("backend")
        if locked in ("sim", "useapi"):
            return str(locked)
    try:
        return choose_backend(options)[0]
    except UsageError:
        return "sim"


@contextlib.asynccontextmanager
async def _open_backend(options: RunOptions, kind: str, base_url: str | None,
                        token: str | None) -> AsyncIterator[_Backend]:
    if base_url is None:
        scale = options.time_scale or EMBEDDED_TIME_SCALE
        sim_token = secrets.token_urlsafe(16)
        base = options.sim or SimConfig(time_scale=scale, seed=0)
        config = dataclasses.replace(base, tokens=(sim_token,), time_scale=scale)
        async with running_sim(config) as sim:
            yield _Backend(kind, sim.base_url, sim_token, True, scale)
        return
    assert token is not None
    yield _Backend(kind, base_url, token, False, options.time_scale or 1.0)


async def _resolve_accounts(
    options: RunOptions, plan: Plan, client: FlowClient, scale: float
) -> list[str]:
    if options.accounts:
        return list(options.accounts)
    from_recipe = list(getattr(plan, "accounts", ()) or ())
    if from_recipe:
        return from_recipe
    for attempt in range(ACCOUNT_TRIES):
        try:
            accounts = await client.accounts()
            break
        except (CapacityError, TransportError):
            if attempt == ACCOUNT_TRIES - 1:
                raise
            await asyncio.sleep(random.uniform(5.0, 10.0) * scale)
    healthy = [email for email, info in accounts.items() if info.ok]
    for email, info in accounts.items():
        if not info.ok:
            log.warning("skipping account %s: %s", email, info.health)
    if not healthy:
        details = "; ".join(f"{e}: {i.health}" for e, i in accounts.items()) or "none configured"
        raise SessionError(
            f"no healthy account at the API ({details})",
            hint="refresh the account's cookies (useapi.net: Setup Google Flow), "
            "or name a working one with --account",
        )
    return healthy


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


def _outcome(sched: Scheduler, results: Mapping[str, NodeResult],
             control: RunControl | None) -> tuple[Outcome, int, str | None]:
    if control is not None and control.interrupted:
        return "interrupted", EXIT_INTERRUPTED, "interrupted"
    if isinstance(sched.stop_error, StopRunError):
        return "stopped", EXIT_STOPPED, str(sched.stop_error)
    if sched.stop_error is not None:  # e.g. a full disk: the run failed, the API did not stop it
        return "failed", sched.stop_error.exit_code, str(sched.stop_error)
    if sched.stop_reason is not None:
        return "failed", EXIT_FAILED, sched.stop_reason
    bad = sum(1 for r in results.values() if r.status != "done")
    if bad:
        return "failed", EXIT_FAILED, f"{bad} node(s) did not finish"
    return "done", EXIT_OK, None


async def run_recipe_async(
    recipe: Path,
    options: RunOptions | None = None,
    *,
    sinks: Sequence[EventSink] = (),
    control: RunControl | None = None,
) -> RunResult:
    """Run ``recipe`` to the end and write every output; raise only for bad input."""
    options = options or RunOptions()
    if options.frozen and (options.refresh_all or options.refresh_steps):
        raise UsageError("--frozen and --refresh contradict each other")
    if options.frozen:  # sends nothing, so needs no token: only the backend kind of the keys
        kind, base_url, token = frozen_backend(options, recipe), None, None
    else:
        kind, base_url, token = choose_backend(options)
    plan = build_plan(recipe, overrides=options.variables, backend=kind)
    unknown = options.refresh_steps - {node.step for node in plan.nodes.values()}
    if unknown:
        raise UsageError(
            f"--refresh: no step named {', '.join(sorted(unknown))} in {recipe}",
            hint=f"steps: {', '.join(dict.fromkeys(n.step for n in plan.nodes.values()))}",
        )
    out = options.out or Path("out") / plan.name
    store = _open_cache(options)
    remote = _open_remote(options, recipe, store)
    cache = ResponseCache(store, remote=remote)
    claims: Claims | None = (
        KeyClaims(store.folder / "claims") if isinstance(store, DiskCache) else None
    )
    if remote is not None:
        claims = SharedClaims(claims, RemoteClaims(remote))
    recorder = RunRecorder()
    started_at = datetime.now(UTC)
    sched = Scheduler(
        plan,
        cache=cache,
        writer=OutputWriter(out),
        claims=claims,
        sinks=[recorder, *sinks],
        options=SchedulerOptions(
            refresh_all=options.refresh_all,
            refresh_steps=options.refresh_steps,
            stop_grace=options.stop_grace,
            seed=options.seed,
            retry=options.retry,
            time_scale=options.time_scale or (EMBEDDED_TIME_SCALE if base_url is None else 1.0),
        ),
    )
    if control is not None:
        control.scheduler = sched
    backend_url = base_url or "embedded simulator"
    try:  # decided from the cache alone, before any request could be sent
        if remote is not None:  # one batch from the remote, so prime reads locally
            await remote.prepare(cache, plan, lock_path(recipe))
        pending = sched.prime()
        if options.frozen:
            _check_frozen(plan, recipe, sched.results, pending)
    except BaseException:
        if remote is not None:
            await remote.aclose()
        store.close()
        raise
    try:
        if pending:
            async with _open_backend(options, kind, base_url, token) as backend:
                backend_url = backend.base_url
                sched.options = dataclasses.replace(
                    sched.options, time_scale=backend.time_scale
                )
                async with FlowClient(base_url=backend.base_url, token=backend.token) as client:
                    accounts = await _resolve_accounts(options, plan, client, backend.time_scale)
                    pool = AccountPool(
                        accounts,
                        sinks=sched.sinks,
                        limiter_config=_limiter_config(options, backend.time_scale),
                        fixed_window=options.fixed_concurrency,
                        clock=sched.clock,
                        t0=sched.clock() - sched.now(),
                    )
                    await sched.run(client, pool)
    except StopRunError as exc:  # before the first generation: GET /accounts said no
        sched.stop_error = exc
        sched.skip_unfinished(f"run stopped: {exc.message}")
    finally:
        if remote is not None:  # claim releases and pushes end first, so run.json counts them
            await remote.aclose()
        results = sched.results
        outcome, code, message = _outcome(sched, results, control)
        finished_at = datetime.now(UTC)
        summary = dict(summarize(results))
        summary.update(
            api_calls=sched.api_calls,
            uploads=sched.uploads,
            retries=sched.retries,
            rejections=sched.rejections,
            waited_for_other_runs=sched.claim_waits,
            corrupt_cache_entries=cache.corrupt_entries,
        )
        run_info = {
            "format": 1,
            "recipe": {"name": plan.name, "path": plan.recipe_path.name},
            "backend": {"kind": kind, "base_url": backend_url},
            "started_at": started_at.isoformat().replace("+00:00", "Z"),
            "finished_at": finished_at.isoformat().replace("+00:00", "Z"),
            "wall_seconds": round((finished_at - started_at).total_seconds(), 3),
            "outcome": outcome,
            "exit_code": code,
            "message": message,
            "summary": summary,
            "remote": remote.summary() if remote is not None else None,
            "nodes": recorder.nodes,
            "timeline": recorder.timeline(),
        }
        try:
            _write_outputs(out, plan, recipe, results=results, run_info=run_info, options=options)
        finally:
            store.close()
    return RunResult(outcome, code, out, summary, message, run_info)


def _limiter_config(options: RunOptions, scale: float) -> LimiterConfig:
    cap = options.max_concurrency
    if cap is not None and cap < 1:
        raise UsageError("--max-concurrency must be at least 1")
    base = options.limiter or LimiterConfig()
    max_window = base.max_window if cap is None else min(cap, base.max_window)
    return dataclasses.replace(
        base,
        time_scale=scale,
        max_window=max_window,
        min_window=min(base.min_window, max_window),
        initial_window=min(base.initial_window, max_window),
    )


def _check_frozen(plan: Plan, recipe: Path, results: Mapping[str, NodeResult],
                  pending: list[str]) -> None:
    """Under --frozen: every node must be cached and, if a lock exists, match it."""
    lock = lock_path(recipe)
    locked = read_lock(lock) if lock.exists() else None
    for nid in plan.nodes:
        res = results[nid]
        if res.status == "done" and res.key and locked is not None:
            check_lock(locked, lock.name, nid, res.key)
    if pending:
        raise FrozenCacheMissError(
            f"--frozen: node '{pending[0]}' is not in the cache"
            f" ({len(pending)} node(s) would need a request)",
            hint="run without --frozen to make them, or restore the cache folder",
        )


def _write_outputs(out: Path, plan: Plan, recipe: Path, *, results: Mapping[str, NodeResult],
                   run_info: Mapping[str, Any], options: RunOptions) -> None:
    writer = OutputWriter(out)
    writer.write_json("manifest.json", build_manifest(plan, results))
    writer.write_json("run.json", run_info)
    if options.lock and not options.frozen:
        lock = lock_path(recipe)
        OutputWriter(recipe.parent).write_json(lock.name, build_lock(plan, results, lock))
    if options.report:
        from flowpipe.report import write_report

        write_report(out)


def run_recipe(
    recipe: Path,
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
