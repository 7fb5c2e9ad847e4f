"""Discrete-event simulation for tuning the concurrency limiter, in API seconds.

No sockets and no wall time: a pure event loop drives the limiter's synchronous core
(``try_acquire``, ``release``, ``poll`` with an explicit ``now``) against a server
whose hidden capacity C(t) follows a trace. The server rejects (after
``--reject-latency``) when its accepted in-flight count is at least C(t); an accepted
job runs its fixed duration, drawn once from U(10, 20). A rejected job goes back to
the queue after U(5, 10) s without holding a slot, as the scheduler does. The oracle
is the fluid bound: the smallest T with the integral of C over [0, T] at least the
total work, and at least the longest job.

    .venv/bin/python benchmarks/limiter_sim.py                 # the table in docs/concurrency.md
    .venv/bin/python benchmarks/limiter_sim.py --set hold_successes=4 --seeds 10
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import heapq
import random
import statistics
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowpipe.engine.limiter import (
    AdaptiveLimiter,
    FixedLimiter,
    LimiterConfig,
    Outcome,
    Permit,
)

HORIZON = 50_000.0  # API s; longer than the slowest baseline needs
LO, HI = 3, 20

LimiterLike = AdaptiveLimiter | FixedLimiter


@dataclass(frozen=True, slots=True)
class Trace:
    """Piecewise-constant capacity: level ``levels[i]`` from ``starts[i]`` on."""

    name: str
    starts: tuple[float, ...]
    levels: tuple[int, ...]

    def at(self, t: float) -> int:
        return self.levels[bisect.bisect_right(self.starts, t) - 1]

    def oracle(self, work: float, longest: float) -> float:
        done = 0.0
        for i, start in enumerate(self.starts):
            end = self.starts[i + 1] if i + 1 < len(self.starts) else HORIZON
            chunk = self.levels[i] * (end - start)
            if done + chunk >= work:
                return max(longest, start + (work - done) / self.levels[i])
            done += chunk
        raise ValueError("trace too short for the work")


def constant(level: int) -> Trace:
    return Trace(f"const-{level}", (0.0,), (level,))


def steps(hold: float, seed: int) -> Trace:
    rng = random.Random(seed)
    n = int(HORIZON / hold) + 1
    return Trace(
        f"steps-{hold:g}s",
        tuple(i * hold for i in range(n)),
        tuple(rng.randint(LO, HI) for _ in range(n)),
    )


def square(half: float) -> Trace:
    n = int(HORIZON / half) + 1
    return Trace(
        f"square-{half:g}s",
        tuple(i * half for i in range(n)),
        tuple(HI if i % 2 == 0 else LO for i in range(n)),
    )


def walk(every: float, seed: int) -> Trace:
    rng = random.Random(seed)
    n = int(HORIZON / every) + 1
    level, levels = rng.randint(LO, HI), []
    for _ in range(n):
        levels.append(level)
        level = min(HI, max(LO, level + rng.choice((-2, -1, 1, 2))))
    return Trace(f"walk-{every:g}s", tuple(i * every for i in range(n)), tuple(levels))


@dataclass(frozen=True, slots=True)
class Result:
    makespan: float
    oracle: float
    rejections: int
    successes: int
    mean_window: float

    @property
    def ratio(self) -> float:
        return self.makespan / self.oracle

    @property
    def rejections_per_success(self) -> float:
        return self.rejections / self.successes


def simulate(
    limiter: LimiterLike,
    trace: Trace,
    *,
    jobs: int = 400,
    seed: int = 0,
    reject_latency: float = 0.25,
    timeline: list[tuple[float, int, int, int, int]] | None = None,
) -> Result:
    """Run ``jobs`` independent jobs through ``limiter`` against ``trace``.

    ``timeline`` collects (t, C(t), window, accepted in flight, ready) after each event.
    """
    rng = random.Random(seed)
    durations = [rng.uniform(10.0, 20.0) for _ in range(jobs)]
    ready: deque[int] = deque(range(jobs))
    queue: list[tuple[float, int, str, int, Permit | None]] = []
    order = 0
    polls: set[float] = set()
    server_in_flight = rejections = successes = 0
    now = last_done = window_area = 0.0
    last_t = 0.0

    def push(at: float, kind: str, job: int, permit: Permit | None) -> None:
        nonlocal order
        heapq.heappush(queue, (at, order, kind, job, permit))
        order += 1

    def dispatch(t: float) -> None:
        nonlocal server_in_flight
        while True:
            deadline = limiter.poll(t, waiting=len(ready))
            sent = False
            while ready:
                permit = limiter.try_acquire(t)
                if permit is None:
                    break
                job, sent = ready.popleft(), True
                if server_in_flight >= trace.at(t):
                    push(t + reject_latency, "rejected", job, permit)
                else:
                    server_in_flight += 1
                    push(t + durations[job], "done", job, permit)
            if not sent:
                break
        if deadline is not None and deadline not in polls:
            polls.add(deadline)
            push(deadline, "poll", -1, None)

    dispatch(0.0)
    while queue:
        now, _, kind, job, permit = heapq.heappop(queue)
        window_area += limiter.window * (now - last_t)
        last_t = now
        if kind == "done":
            assert permit is not None
            server_in_flight -= 1
            successes += 1
            last_done = now
            limiter.release(permit, Outcome.OK, now=now)
        elif kind == "rejected":
            assert permit is not None
            rejections += 1
            limiter.release(permit, Outcome.REJECTED, now=now)
            push(now + rng.uniform(5.0, 10.0), "ready", job, None)
        elif kind == "ready":
            ready.append(job)
        else:
            polls.discard(now)
        dispatch(now)
        if timeline is not None:
            timeline.append((now, trace.at(now), limiter.window, server_in_flight, len(ready)))
    assert successes == jobs
    return Result(
        makespan=last_done,
        oracle=trace.oracle(sum(durations), max(durations)),
        rejections=rejections,
        successes=successes,
        mean_window=window_area / max(last_done, 1e-9),
    )


def scenarios(seeds: int) -> list[tuple[str, list[Trace]]]:
    """Trace families; the stochastic ones with ``seeds`` seeds each."""
    return [
        ("const-3", [constant(3)]),
        ("const-10", [constant(10)]),
        ("const-20", [constant(20)]),
        ("steps-600s", [steps(600, s) for s in range(seeds)]),
        ("steps-120s", [steps(120, s) for s in range(seeds)]),
        ("steps-30s", [steps(30, s) for s in range(seeds)]),
        ("square-60s", [square(60)]),
        ("walk-10s", [walk(10, s) for s in range(seeds)]),
    ]


def limiters(config: LimiterConfig) -> list[tuple[str, Callable[[], LimiterLike]]]:
    return [
        ("adaptive", lambda: AdaptiveLimiter(config, clock=lambda: 0.0)),
        ("fixed-3", lambda: FixedLimiter(3, clock=lambda: 0.0)),
        ("fixed-20", lambda: FixedLimiter(20, clock=lambda: 0.0)),
        ("one-at-a-time", lambda: FixedLimiter(1, clock=lambda: 0.0)),
    ]


def evaluate(
    make: Callable[[], LimiterLike], traces: Sequence[Trace], *, jobs: int, latency: float
) -> tuple[float, float, float]:
    """Mean ratio, worst ratio and pooled rejections per success over ``traces``."""
    results = [
        simulate(make(), tr, jobs=jobs, seed=i, reject_latency=latency)
        for i, tr in enumerate(traces)
    ]
    ratios = [r.ratio for r in results]
    rps = sum(r.rejections for r in results) / sum(r.successes for r in results)
    return statistics.fmean(ratios), max(ratios), rps


def parse_overrides(items: Sequence[str]) -> dict[str, float | int]:
    fields = {f.name: f.type for f in dataclasses.fields(LimiterConfig)}
    out: dict[str, float | int] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"unknown LimiterConfig field {key!r}")
        out[key] = int(value) if fields[key] == "int" else float(value)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per stochastic trace")
    parser.add_argument("--reject-latency", type=float, default=0.25, help="API seconds")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a LimiterConfig field",
    )
    parser.add_argument("--only", choices=["adaptive"], help="skip the baselines")
    args = parser.parse_args(argv)
    config = LimiterConfig(**parse_overrides(args.set))  # type: ignore[arg-type]
    chosen = [lm for lm in limiters(config) if args.only is None or lm[0] == args.only]
    print(
        f"{args.jobs} jobs of U(10,20) API s; reject latency {args.reject_latency} s; "
        f"{args.seeds} seeds per stochastic trace; makespan/oracle mean (worst), rej/success"
    )
    header = f"| {'trace':<11} |" + "".join(f" {name:<22} |" for name, _ in chosen)
    print(header)
    print("|" + "-" * 13 + "|" + "".join("-" * 24 + "|" for _ in chosen))
    for label, traces in scenarios(args.seeds):
        cells = []
        for _, make in chosen:
            mean, worst, rps = evaluate(make, traces, jobs=args.jobs, latency=args.reject_latency)
            cells.append(f"{mean:5.3f} ({worst:5.3f}) {rps:5.2f}")
        print(f"| {label:<11} |" + "".join(f" {c:<22} |" for c in cells))


if __name__ == "__main__":
    main()
