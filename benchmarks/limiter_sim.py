"""Discrete-event simulation for tuning the concurrency limiter, in API seconds.

No sockets and no wall time: a pure event loop drives the limiters' synchronous core
(``try_acquire``, ``release``, ``poll`` with an explicit ``now``) against one server
per account whose hidden capacity C(t) follows a trace. A server rejects (after
``--reject-latency``) when its accepted in-flight count is at least C(t); an accepted
job runs its fixed duration, drawn once from U(10, 20). A rejected job goes back to
the ready queue after U(5, 10) s (``--requeue``) without holding a slot, as the
scheduler does; the queue is ordered like the scheduler's heap for independent
nodes (recipe order), so a job that comes back is the next to go. With several
accounts every account has its own limiter and its own server on the same trace,
and all of them take work from one ready queue. The oracle is the fluid bound: the
smallest T with the integral of the summed capacity over [0, T] at least the total
work, and at least the longest job.

Columns, side by side on the same jobs and traces:

    told       a client told C(t) in advance: its window is C(t) at every instant
    clairvoyant  with --clairvoyant: told C(t) and every job's duration, it sends the
               longest job first (no client can know the durations; a bound for the tail)
    adaptive   flowpipe's AdaptiveLimiter (LimiterConfig, with --set overrides)
    baseline   the limiter before issue 17 (benchmarks/limiter_baseline.py, frozen)
    fixed-3, fixed-20, one-at-a-time   with --fixed

    .venv/bin/python benchmarks/limiter_sim.py                   # every table, 5 seeds
    .venv/bin/python benchmarks/limiter_sim.py --tables short --seeds 20
    .venv/bin/python benchmarks/limiter_sim.py --tables short --seeds 20 --clairvoyant
    .venv/bin/python benchmarks/limiter_sim.py --set probe_pace=0.3 --reject-latency 1.0
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import heapq
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import limiter_baseline

from flowpipe.engine.limiter import (
    AdaptiveLimiter,
    FixedLimiter,
    LimiterConfig,
    Outcome,
    Permit,
)

HORIZON = 50_000.0  # API s; longer than the slowest baseline needs
LO, HI = 3, 20


class SyncLimiter(Protocol):
    """The synchronous core every simulated limiter offers."""

    @property
    def window(self) -> int: ...
    def try_acquire(self, now: float | None = None) -> Permit | None: ...
    def release(self, permit: Permit, outcome: Outcome, *, now: float | None = None) -> None: ...
    def poll(self, now: float | None = None, *, waiting: int | None = None) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Trace:
    """Piecewise-constant capacity: level ``levels[i]`` from ``starts[i]`` on."""

    name: str
    starts: tuple[float, ...]
    levels: tuple[int, ...]

    def at(self, t: float) -> int:
        return self.levels[bisect.bisect_right(self.starts, t) - 1]

    def next_change(self, t: float) -> float | None:
        i = bisect.bisect_right(self.starts, t)
        return self.starts[i] if i < len(self.starts) else None

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


class ToldLimiter:
    """The reference client that was told C(t): its window is the capacity right now.

    It never sends above C(t), so it is never rejected, and like any client it cannot
    split jobs: what separates it from the fluid oracle is what no limiter can win back.
    """

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.window = trace.at(0.0)
        self._in_flight = 0
        self._seq = 0

    def poll(self, now: float | None = None, *, waiting: int | None = None) -> float | None:
        self.window = self.trace.at(now or 0.0)
        return self.trace.next_change(now or 0.0)

    def try_acquire(self, now: float | None = None) -> Permit | None:
        at = now or 0.0
        self.window = self.trace.at(at)
        if self._in_flight >= self.window:
            return None
        self._in_flight += 1
        self._seq += 1
        return Permit(seq=self._seq, epoch=0, sent_at=at, level=self._in_flight)

    def release(self, permit: Permit, outcome: Outcome, *, now: float | None = None) -> None:
        self._in_flight -= 1


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


Timeline = list[tuple[float, int, int, int, int]]


def simulate(
    make: Callable[[Trace], SyncLimiter],
    trace: Trace,
    *,
    jobs: int = 400,
    accounts: int = 1,
    seed: int = 0,
    reject_latency: float = 0.25,
    requeue: tuple[float, float] = (5.0, 10.0),
    timeline: Timeline | None = None,
    longest_first: bool = False,
) -> Result:
    """Run ``jobs`` independent jobs on ``accounts`` accounts against ``trace``.

    Every account gets ``make(trace)`` as its limiter and a server of its own at C(t).
    ``timeline`` collects (t, C(t), first account's window, its accepted in flight,
    ready) after each event. ``longest_first``: job 0 is the longest (the same
    durations, so the queue sends the longest first).
    """
    rng = random.Random(seed)
    durations = [rng.uniform(10.0, 20.0) for _ in range(jobs)]
    if longest_first:
        durations.sort(reverse=True)
    limiters = [make(trace) for _ in range(accounts)]
    ready = list(range(jobs))  # a heap: recipe order, as the scheduler's
    queue: list[tuple[float, int, str, int, int, Permit | None]] = []
    order = 0
    polls: set[float] = set()
    server = [0] * accounts
    rejections = successes = 0
    now = last_done = window_area = 0.0
    last_t = 0.0
    turn = 0

    def push(at: float, kind: str, job: int, account: int, permit: Permit | None) -> None:
        nonlocal order
        heapq.heappush(queue, (at, order, kind, job, account, permit))
        order += 1

    def dispatch(t: float) -> None:
        # The scheduler's dispatchers race for one heap; here they take turns, one
        # job at a time, starting with a different account each time.
        nonlocal turn
        deadlines: list[float] = []
        sent = True
        while sent:
            sent = False
            deadlines.clear()
            for k in range(accounts):
                a = (turn + k) % accounts
                lim = limiters[a]
                deadline = lim.poll(t, waiting=len(ready))
                if deadline is not None:
                    deadlines.append(deadline)
                if not ready:
                    continue
                permit = lim.try_acquire(t)
                if permit is None:
                    continue
                job, sent = heapq.heappop(ready), True
                if server[a] >= trace.at(t):
                    push(t + reject_latency, "rejected", job, a, permit)
                else:
                    server[a] += 1
                    push(t + durations[job], "done", job, a, permit)
            turn += 1
        for deadline in deadlines:
            if deadline not in polls:
                polls.add(deadline)
                push(deadline, "poll", -1, -1, None)

    dispatch(0.0)
    while queue and successes < jobs:
        now, _, kind, job, a, permit = heapq.heappop(queue)
        window_area += limiters[0].window * (now - last_t)
        last_t = now
        if kind == "done":
            assert permit is not None
            server[a] -= 1
            successes += 1
            last_done = now
            limiters[a].release(permit, Outcome.OK, now=now)
        elif kind == "rejected":
            assert permit is not None
            rejections += 1
            limiters[a].release(permit, Outcome.REJECTED, now=now)
            push(now + rng.uniform(*requeue), "ready", job, -1, None)
        elif kind == "ready":
            heapq.heappush(ready, job)
        else:
            polls.discard(now)
        dispatch(now)
        if timeline is not None:
            timeline.append((now, trace.at(now), limiters[0].window, server[0], len(ready)))
    assert successes == jobs
    return Result(
        makespan=last_done,
        oracle=trace.oracle(sum(durations) / accounts, max(durations)),
        rejections=rejections,
        successes=successes,
        mean_window=window_area / max(last_done, 1e-9),
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """One row: a trace family (one trace per seed), a workload and an account count."""

    label: str
    trace: Callable[[int], Trace]
    jobs: int
    accounts: int = 1


def _family(kind: str, period: float) -> Callable[[int], Trace]:
    if kind == "steps":
        return lambda s: steps(period, s)
    if kind == "walk":
        return lambda s: walk(period, s)
    if kind == "square":
        return lambda s: square(period)
    return lambda s: constant(int(period))


def tables() -> dict[str, list[Scenario]]:
    """The scenario tables; every row runs each seed on its own trace and jobs."""
    long_holds = [
        Scenario(f"{kind}-{p:g}{'s' if kind != 'const' else ''} x400", _family(kind, p), 400)
        for kind, p in [
            ("const", 3),
            ("const", 10),
            ("const", 20),
            ("steps", 600),
            ("steps", 120),
            ("steps", 30),
            ("square", 60),
            ("walk", 10),
        ]
    ]
    short: list[Scenario] = []
    for jobs in (40, 70, 100):
        for kind, p in [("steps", 30), ("steps", 45), ("steps", 60), ("steps", 120)]:
            short.append(Scenario(f"{kind}-{p:g}s x{jobs}", _family(kind, p), jobs))
    for p in (45, 60):
        short.append(Scenario(f"steps-{p:g}s x400", _family("steps", p), 400))
    many = [
        Scenario("10 x const-20 x600", _family("const", 20), 600, accounts=10),
        Scenario("10 x const-20 x300", _family("const", 20), 300, accounts=10),
        Scenario("10 x steps-60s x600", _family("steps", 60), 600, accounts=10),
        Scenario("3 x const-20 x100", _family("const", 20), 100, accounts=3),
    ]
    return {"long": long_holds, "short": short, "many": many}


Maker = Callable[[Trace], SyncLimiter]


Column = tuple[str, Maker, bool]  # name, limiter, longest job first


def limiters(config: LimiterConfig, *, fixed: bool, clairvoyant: bool = False) -> list[Column]:
    base = limiter_baseline.LimiterConfig()
    out: list[Column] = [
        ("told", ToldLimiter, False),
        ("adaptive", lambda _t: AdaptiveLimiter(config, clock=lambda: 0.0), False),
        ("baseline", lambda _t: limiter_baseline.AdaptiveLimiter(base, clock=lambda: 0.0),
         False),
    ]
    if clairvoyant:
        out.insert(1, ("clairvoyant", ToldLimiter, True))
    if fixed:
        out += [
            ("fixed-3", lambda _t: FixedLimiter(3, clock=lambda: 0.0), False),
            ("fixed-20", lambda _t: FixedLimiter(20, clock=lambda: 0.0), False),
            ("one-at-a-time", lambda _t: FixedLimiter(1, clock=lambda: 0.0), False),
        ]
    return out


def evaluate(
    make: Maker,
    row: Scenario,
    seeds: Sequence[int],
    *,
    latency: float,
    requeue: tuple[float, float] = (5.0, 10.0),
    longest_first: bool = False,
) -> list[Result]:
    return [
        simulate(
            make,
            row.trace(s),
            jobs=row.jobs,
            accounts=row.accounts,
            seed=s,
            reject_latency=latency,
            requeue=requeue,
            longest_first=longest_first,
        )
        for s in seeds
    ]


def cell(results: Sequence[Result]) -> str:
    """Median makespan/oracle (worst seed), median rejections per success.

    The last line of each table is the mean over its rows of the median, over seeds,
    of makespan / the told client's makespan on the same seed.
    """
    med = statistics.median(r.ratio for r in results)
    worst = max(r.ratio for r in results)
    rps = statistics.median(r.rejections_per_success for r in results)
    return f"{med:5.3f} ({worst:5.3f}) {rps:4.2f}"


def parse_overrides(items: Sequence[str]) -> dict[str, float | int | bool]:
    fields = {f.name: f.type for f in dataclasses.fields(LimiterConfig)}
    out: dict[str, float | int | bool] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"unknown LimiterConfig field {key!r}")
        kind = fields[key]
        if kind == "bool":
            out[key] = value.lower() in ("1", "true", "yes", "on")
        else:
            out[key] = int(value) if kind == "int" else float(value)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per row (1..N)")
    parser.add_argument("--reject-latency", type=float, default=0.25, help="API seconds")
    parser.add_argument(
        "--requeue",
        default="5,10",
        metavar="LO,HI",
        help="a rejected job is ready again after U(LO, HI) API seconds",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a LimiterConfig field of the adaptive column",
    )
    parser.add_argument("--tables", default="long,short,many", help="long, short, many")
    parser.add_argument("--only", default=None, help="columns to show, e.g. adaptive,told")
    parser.add_argument("--fixed", action="store_true", help="add the fixed-window columns")
    parser.add_argument("--clairvoyant", action="store_true",
                        help="add a told client that also knows every job's duration")
    args = parser.parse_args(argv)
    config = LimiterConfig(**parse_overrides(args.set))  # type: ignore[arg-type]
    chosen = limiters(config, fixed=args.fixed, clairvoyant=args.clairvoyant)
    if args.only:
        keep = args.only.split(",")
        chosen = [c for c in chosen if c[0] in keep]
    seeds = range(1, args.seeds + 1)
    lo, _, hi = args.requeue.partition(",")
    requeue = (float(lo), float(hi or lo))
    everything = tables()
    print(
        f"jobs of U(10,20) API s; reject latency {args.reject_latency} s; requeue after "
        f"U({requeue[0]:g},{requeue[1]:g}) s; seeds 1-{args.seeds}; "
        "makespan/oracle median (worst seed), median rejections/success"
    )
    for name in args.tables.split(","):
        print(f"\n{name}:\n")
        print(f"| {'scenario':<21} |" + "".join(f" {n:<22} |" for n, _, _ in chosen))
        print("|" + "-" * 23 + "|" + "".join("-" * 24 + "|" for _ in chosen))
        versus: list[list[float]] = [[] for _ in chosen]
        for row in everything[name]:
            told = evaluate(ToldLimiter, row, seeds, latency=args.reject_latency, requeue=requeue)
            cells = []
            for i, (_, make, longest) in enumerate(chosen):
                results = evaluate(make, row, seeds, latency=args.reject_latency,
                                   requeue=requeue, longest_first=longest)
                cells.append(cell(results))
                pairs = [r.makespan / t.makespan for r, t in zip(results, told, strict=True)]
                versus[i].append(statistics.median(pairs))
            print(f"| {row.label:<21} |" + "".join(f" {c:<22} |" for c in cells))
        means = [f"{statistics.fmean(v):5.3f}" for v in versus]
        print(f"| {'mean, x told':<21} |" + "".join(f" {m:<22} |" for m in means))


if __name__ == "__main__":
    main()
