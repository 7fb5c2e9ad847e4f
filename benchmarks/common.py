"""Shared helpers for the benchmarks: generated recipes and one measured run on loopback.

A measured run serves a simulator in the current event loop (its own ``SimState``, so
the benchmark can read the simulator's API clock from an event sink) and runs the real
runner against it with the response cache in memory. Everything is in API seconds.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import limiter_baseline
from aiohttp import web

from flowpipe.engine import RunOptions, run_recipe_async
from flowpipe.engine import accounts as account_pool
from flowpipe.engine.limiter import FixedLimiter, LimiterConfig, LimiterEvent, Sleep
from flowpipe.engine.retry import RetryPolicy
from flowpipe.events import Event, InflightChanged, NodeDone, Rejected, WindowChanged
from flowpipe.sim import CapacitySpec, SimConfig
from flowpipe.sim.app import create_app
from flowpipe.sim.render import Rendered, Renderer, RenderSpec, render_image
from flowpipe.sim.state import SimState

TOKEN = "bench-token-not-secret"  # the loopback simulator's throwaway token


def independent_recipe(n: int) -> str:
    """``n`` independent requests: one matrix step, one image each."""
    values = ", ".join(str(i) for i in range(n))
    return (
        "version: 1\nname: independent\n"
        "defaults: {model: imagen-4, aspectRatio: square, count: 1}\n"
        "steps:\n"
        "  shot:\n"
        f"    matrix: {{i: [{values}]}}\n"
        '    prompt: "product shot number {{ i }}"\n'
    )


def layered_recipe(layers: int, width: int) -> str:
    """``layers`` steps of ``width`` nodes; node i of a layer uses node i of the one before."""
    values = ", ".join(str(i) for i in range(width))
    lines = [
        "version: 1",
        "name: layered",
        "defaults: {model: nano-banana, aspectRatio: square, count: 1}",
        "steps:",
    ]
    for k in range(layers):
        lines += [
            f"  l{k}:",
            f"    matrix: {{i: [{values}]}}",
            f'    prompt: "layer {k} variant {{{{ i }}}}"',
        ]
        if k:
            lines.append(f'    context: ["l{k - 1}[i={{{{ i }}}}].0"]')
    return "\n".join(lines) + "\n"


WORKLOADS = {
    "indep-400": lambda: independent_recipe(400),
    "dag-4x100": lambda: layered_recipe(4, 100),
    "indep-40": lambda: independent_recipe(40),
    "indep-70": lambda: independent_recipe(70),
    "indep-100": lambda: independent_recipe(100),
    "ten-600": lambda: independent_recipe(600),
}
ACCOUNTS = {"ten-600": 10}  # workloads run on this many accounts, each with its own C(t)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How the runner is configured: adaptive (None window) or a fixed window.

    ``swap`` puts another limiter where the runner builds its adaptive one:
    ``baseline`` is the limiter before issue 17 (benchmarks/limiter_baseline.py),
    ``told`` a client told C(t) in advance (its window is the capacity right now).
    """

    name: str
    fixed: int | None = None
    capacity_delay: tuple[float, float] = (5.0, 10.0)
    limiter: LimiterConfig | None = None
    swap: Literal["baseline", "told"] | None = None


class ToldLimiter(FixedLimiter):
    """A window that is the simulator's C(t) at every moment: the told-capacity client."""

    def __init__(
        self,
        state: SimState,
        *,
        clock: Callable[[], float],
        sleep: Sleep,
        on_event: Callable[[LimiterEvent], None] | None,
    ) -> None:
        self._state = state
        super().__init__(
            state.capacity.level_at(state.now()), clock=clock, sleep=sleep, on_event=on_event
        )

    def _follow(self) -> float | None:
        """Set the window to C(now); return the clock time C next changes."""
        state = self._state
        now = state.now()
        self._window = state.capacity.level_at(now)
        spec = state.capacity.spec
        if spec.kind == "constant" or state.started_at is None:
            return None
        change = (math.floor(now / spec.period) + 1) * spec.period
        # the engine's limiters read API seconds: monotonic seconds / time scale
        return state.started_at / state.config.time_scale + change

    def poll(self, now: float | None = None, *, waiting: int | None = None) -> float | None:
        return self._follow()

    def _may_issue(self, now: float) -> bool:
        self._follow()
        return len(self._outstanding) < self._window


@contextlib.contextmanager
def swapped_limiter(policy: Policy, state: SimState) -> Iterator[None]:
    """Let the runner build ``policy.swap``'s limiter instead of its adaptive one.

    Each benchmark run has a worker process of its own, so the swap touches no other run.
    """
    if policy.swap is None:
        yield
        return

    def build(
        config: LimiterConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_event: Callable[[LimiterEvent], None] | None = None,
    ) -> object:
        # The engine hands its limiters a clock and a sleep in API seconds.
        if policy.swap == "told":
            return ToldLimiter(state, clock=clock, sleep=sleep, on_event=on_event)
        old = limiter_baseline.LimiterConfig()
        return limiter_baseline.AdaptiveLimiter(old, clock=clock, sleep=sleep, on_event=on_event)

    original = account_pool.AdaptiveLimiter
    account_pool.AdaptiveLimiter = build  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        account_pool.AdaptiveLimiter = original  # type: ignore[misc]


@dataclass(slots=True)
class Recorder:
    """An event sink that stamps window, in-flight and rejections with the sim's API clock."""

    state: SimState
    account: str | None = None  # whose window to record (the first account that reports)
    window: list[tuple[float, int]] = field(default_factory=list)
    inflight: list[tuple[float, int]] = field(default_factory=list)
    rejections: list[float] = field(default_factory=list)
    last_done: float = 0.0
    done: int = 0

    def handle(self, event: Event) -> None:
        now = self.state.now()
        if isinstance(event, WindowChanged):
            if self.account is None:
                self.account = event.account
            if event.account == self.account:
                self.window.append((now, event.window))
        elif isinstance(event, InflightChanged):
            self.inflight.append((now, event.in_flight))
        elif isinstance(event, Rejected):
            self.rejections.append(now)
        elif isinstance(event, NodeDone):
            self.last_done = now
            self.done += 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStats:
    """One run's measurements, API seconds."""

    policy: str
    trace: str
    workload: str
    seed: int
    makespan: float
    oracle: float
    successes: int
    rejections: int
    failed: int
    utilization: float
    rise_times: tuple[float, ...]  # time to reach 0.9 C after each rise reached in time
    rises_missed: int  # rises where the window never got there before C changed again
    wall: float
    cpu: float
    window: tuple[tuple[float, int], ...] = ()
    capacity: tuple[tuple[float, int], ...] = ()

    @property
    def ratio(self) -> float:
        return self.makespan / self.oracle if self.oracle else float("nan")

    @property
    def rej_per_success(self) -> float:
        return self.rejections / max(1, self.successes)


class StockRenderer(Renderer):
    """Renders one image per model and aspect ratio and serves it for every request.

    The real renderer draws and encodes a native-size JPEG per request, about 15 ms of
    CPU: 400 of them per run would make the two shared cores, not the scheduler, the
    bottleneck at a 1/50 time scale. The client still downloads, parses, hashes and
    writes every image; only the server's drawing is shared.
    """

    _stock: ClassVar[dict[tuple[str, str], Rendered]] = {}

    def render(self, spec: RenderSpec, index: int = 0) -> Rendered:
        key = (spec.model, spec.aspect_ratio)
        hit = self._stock.get(key)
        if hit is None:
            hit = self._stock[key] = render_image(spec, 0)
        return hit


@contextlib.asynccontextmanager
async def serve_sim(
    config: SimConfig, *, stock: bool = True
) -> AsyncIterator[tuple[str, SimState]]:
    """Serve ``config`` on a free loopback port; yield (base_url, state)."""
    state = SimState(config, renderer=StockRenderer()) if stock else SimState(config)
    runner = web.AppRunner(create_app(config, state=state), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        yield f"http://127.0.0.1:{port}/v1/google-flow", state
    finally:
        await runner.cleanup()


def integrate(trace: list[tuple[float, int]], start: float, end: float) -> float:
    """Integral of the piecewise-constant capacity over [start, end]."""
    total = 0.0
    for i, (t, c) in enumerate(trace):
        nxt = trace[i + 1][0] if i + 1 < len(trace) else float("inf")
        lo, hi = max(t, start), min(nxt, end)
        if hi > lo:
            total += c * (hi - lo)
    return total


def rise_times(
    trace: list[tuple[float, int]], window: list[tuple[float, int]], end: float
) -> tuple[list[float], int]:
    """For each rise of C before ``end``: API seconds until the window reaches 0.9 C."""
    times = [t for t, _ in window]
    reached: list[float] = []
    missed = 0
    for i in range(1, len(trace)):
        t, c = trace[i]
        if c <= trace[i - 1][1] or t >= end:
            continue
        until = min(trace[i + 1][0] if i + 1 < len(trace) else end, end)
        target = 0.9 * c
        k = bisect.bisect_right(times, t) - 1
        if k >= 0 and window[k][1] >= target:
            reached.append(0.0)
            continue
        hit = next((wt for wt, w in window[k + 1 :] if w >= target and wt <= until), None)
        if hit is None:
            missed += 1
        else:
            reached.append(hit - t)
    return reached, missed


async def measured_run(
    *,
    recipe: Path,
    out: Path,
    policy: Policy,
    capacity: CapacitySpec,
    trace_name: str,
    workload: str,
    seed: int,
    time_scale: float,
    keep_series: bool = False,
    accounts: int = 1,
) -> RunStats:
    """Run ``recipe`` once under ``policy`` against a fresh simulator; measure it.

    With ``accounts`` > 1 the simulator knows that many accounts, each with its own
    C(t), and the run uses all of them.
    """
    emails = tuple(f"bench{i}@example.com" for i in range(accounts))
    config = SimConfig(
        tokens=(TOKEN,),
        accounts=emails,
        time_scale=time_scale,
        capacity=capacity,
        capacity_per_account=accounts > 1,
        seed=seed,
        reject_status="mixed",
    )
    wall0, cpu0 = time.perf_counter(), time.process_time()
    async with serve_sim(config) as (url, state):
        rec = Recorder(state)
        options = RunOptions(
            out=out,
            backend="sim",
            base_url=url,
            token=TOKEN,
            time_scale=time_scale,
            use_cache=False,
            report=False,
            lock=False,
            fixed_concurrency=policy.fixed,
            limiter=policy.limiter,
            retry=RetryPolicy(capacity_delay=policy.capacity_delay, max_capacity_retries=100_000),
            seed=seed,
        )
        with swapped_limiter(policy, state):
            result = await run_recipe_async(recipe, options, sinks=[rec])
        stats: dict[str, Any] = state.stats()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    oracle = stats["oracle"]
    start = float(oracle["start_api_seconds"] or 0.0)
    end = rec.last_done
    trace = [(float(t), int(c)) for t, c in stats["capacity_trace"]]
    # the recorder's window starts at the limiter's first event; before it, the initial window
    reached, missed = rise_times(trace, rec.window, end)
    succ = int(stats["images_statuses"].get("200", 0))
    rej = sum(int(v) for k, v in stats["images_statuses"].items() if k in ("429", "503"))
    failed = int(result.summary["nodes"]) - int(result.summary["done"])
    return RunStats(
        policy=policy.name,
        trace=trace_name,
        workload=workload,
        seed=seed,
        makespan=end - start,
        oracle=float(oracle["makespan_api_seconds"]),
        successes=succ,
        rejections=rej,
        failed=failed,
        utilization=float(oracle["work_api_seconds"])
        / max(1e-9, accounts * integrate(trace, start, end)),
        rise_times=tuple(reached),
        rises_missed=missed,
        wall=wall,
        cpu=cpu,
        window=tuple(rec.window) if keep_series else (),
        capacity=tuple(trace) if keep_series else (),
    )
