"""Throughput against the physical limit: the real runner on loopback vs the simulator.

Every cell runs ``flowpipe.engine.run_recipe_async`` (client, scheduler, limiter; response
cache in memory, so every node is sent) against a fresh simulator with a hidden
capacity trace, and compares its makespan with the simulator's oracle bound (the
fluid bound for the work it served). The same traces and seeds run flowpipe's
adaptive limiter and the baselines a user would otherwise write:

    flowpipe    the adaptive limiter (LimiterConfig defaults)
    baseline    the adaptive limiter before issue 17 (benchmarks/limiter_baseline.py)
    told        a client told C(t) in advance: its window is the capacity right now
    fixed-3     3 in flight, the level the API always grants
    fixed-20    20 in flight, retry after U(5, 10) s
    one         one at a time, sleep 30 s on a 429
    unbounded   everything at once (400), retry after a flat 5 s

Runs go concurrently (they mostly wait), each in a worker process of its own, so the
floods' thousands of rejected requests add no event-loop lag to the other runs.
Outputs go to /dev/shm.

    .venv/bin/python benchmarks/throughput.py --quick            # < 2 min, one seed
    .venv/bin/python benchmarks/throughput.py                    # the docs table, < 10 min
    .venv/bin/python benchmarks/throughput.py --short            # issue 17: short holds
    .venv/bin/python benchmarks/throughput.py --quick --plots docs/img

``--short`` runs short workloads (40-100 requests) on capacity that changes every
30-60 s, 400 requests on holds of 2 and 10 minutes, and 600 requests on ten accounts
of constant capacity 20 each, with flowpipe, the baseline and the told client.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import multiprocessing
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ACCOUNTS, WORKLOADS, Policy, RunStats, measured_run

from flowpipe.sim import CapacitySpec

TRACES: dict[str, CapacitySpec] = {
    "const-3": CapacitySpec(kind="constant", level=3),
    "const-10": CapacitySpec(kind="constant", level=10),
    "const-20": CapacitySpec(kind="constant", level=20),
    "steps-30s": CapacitySpec(kind="steps", period=30.0),
    "steps-45s": CapacitySpec(kind="steps", period=45.0),
    "steps-60s": CapacitySpec(kind="steps", period=60.0),
    "steps-120s": CapacitySpec(kind="steps", period=120.0),
    "steps-600s": CapacitySpec(kind="steps", period=600.0),
    "square-60s": CapacitySpec(kind="square", period=60.0),
    "walk": CapacitySpec(kind="walk", period=10.0),
}
POLICIES: dict[str, Policy] = {
    "flowpipe": Policy(name="flowpipe"),
    "baseline": Policy(name="baseline", swap="baseline"),
    "told": Policy(name="told", swap="told"),
    "fixed-3": Policy(name="fixed-3", fixed=3),
    "fixed-20": Policy(name="fixed-20", fixed=20),
    "one": Policy(name="one", fixed=1, capacity_delay=(30.0, 30.0)),
    "unbounded": Policy(name="unbounded", fixed=400, capacity_delay=(5.0, 5.0)),
}
FLOODS = ("fixed-20", "unbounded")  # CPU-heavy: thousands of rejections per run
ROOT = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())


@dataclass(frozen=True, slots=True)
class Cell:
    policy: str
    trace: str
    workload: str
    seed: int
    scale: float
    keep_series: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    traces: tuple[str, ...]
    workloads: dict[str, tuple[str, ...]]  # workload -> traces it runs on
    seeds: tuple[int, ...]
    flood_seeds: tuple[int, ...]
    flood_traces: tuple[str, ...]
    scale: float
    slow_scale: float  # for one-at-a-time, which needs 6,000 API s for 400 jobs
    parallel: int


SHORT_TRACES = ("steps-30s", "steps-45s", "steps-60s")


def make_plan(args: argparse.Namespace) -> Plan:
    if args.short:
        seeds = tuple(range(1, args.seeds + 1))
        short = {w: SHORT_TRACES for w in ("indep-40", "indep-70", "indep-100")}
        return Plan(
            traces=(*SHORT_TRACES, "steps-120s", "steps-600s", "const-20"),
            workloads={
                **short,
                "indep-400": ("steps-120s", "steps-600s"),
                "ten-600": ("const-20",),
            },
            seeds=seeds,
            flood_seeds=seeds[: args.flood_seeds],
            flood_traces=(),
            scale=args.scale or 0.04,
            slow_scale=args.slow_scale or 0.04,
            parallel=args.parallel,
        )
    if args.quick:
        traces = ("walk", "steps-120s", "const-10")
        return Plan(
            traces=traces,
            workloads={"indep-400": traces},
            seeds=(8,),  # the median walk of seeds 1-10 (mean C 11.3): see docs/benchmarks.md
            flood_seeds=(8,),
            flood_traces=("walk", "const-10"),
            scale=args.scale or 0.04,
            slow_scale=args.slow_scale or 0.012,
            parallel=args.parallel,
        )
    seeds = tuple(range(1, args.seeds + 1))
    return Plan(
        traces=tuple(TRACES),
        workloads={
            "indep-400": tuple(t for t in TRACES if t not in ("steps-45s", "steps-60s")),
            "dag-4x100": ("walk", "steps-120s", "square-60s"),
        },
        seeds=seeds,
        flood_seeds=seeds[: args.flood_seeds],
        flood_traces=tuple(TRACES),
        scale=args.scale or 0.04,
        slow_scale=args.slow_scale or 0.04,
        parallel=args.parallel,
    )


def cells(plan: Plan, policies: Sequence[str]) -> list[Cell]:
    out: list[Cell] = []
    for workload, traces in plan.workloads.items():
        for trace in traces:
            for policy in policies:
                flood = policy in FLOODS or policy == "one"
                if policy in FLOODS and trace not in plan.flood_traces:
                    continue
                if workload != "indep-400" and policy == "one":
                    continue  # 6,000 API s again, and no dependency question to answer
                for seed in plan.flood_seeds if flood else plan.seeds:
                    scale = plan.slow_scale if policy == "one" else plan.scale
                    keep = policy == "flowpipe" and seed == plan.seeds[0]
                    out.append(Cell(policy, trace, workload, seed, scale, keep))
    return out


def expected_api_seconds(cell: Cell) -> float:
    """Rough length, to start the longest runs first."""
    level = {"const-3": 3, "const-10": 10, "const-20": 20}.get(cell.trace, 11)
    width = {"one": 1, "fixed-3": 3}.get(cell.policy, level)
    jobs = math.prod(int(n) for n in cell.workload.rsplit("-", 1)[1].split("x"))
    return 15.0 * jobs / min(width, level) / ACCOUNTS.get(cell.workload, 1) * cell.scale


def run_cell(cell: Cell, folder: str) -> RunStats:
    """One run in this (worker) process, on its own event loop."""
    recipe = Path(folder) / f"{cell.workload}.yaml"
    out = Path(tempfile.mkdtemp(prefix="fp-bench-", dir=ROOT))
    try:
        stats = asyncio.run(
            measured_run(
                recipe=recipe,
                out=out,
                policy=POLICIES[cell.policy],
                capacity=TRACES[cell.trace],
                trace_name=cell.trace,
                workload=cell.workload,
                seed=cell.seed,
                time_scale=cell.scale,
                keep_series=cell.keep_series,
                accounts=ACCOUNTS.get(cell.workload, 1),
            )
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(
        f"  {cell.workload} {cell.trace} {cell.policy} seed {cell.seed}: "
        f"{stats.ratio:.3f}, {stats.rej_per_success:.2f} rej/ok, wall {stats.wall:.0f}s",
        file=sys.stderr,
        flush=True,
    )
    return stats


def run_all(todo: list[Cell], procs: int) -> list[RunStats]:
    """Each run in a worker process of its own: one event loop per run, so one run's
    burst of rejections does not delay another's timers; the longest runs start first."""
    todo = sorted(todo, key=expected_api_seconds, reverse=True)
    with tempfile.TemporaryDirectory() as folder:
        for name, make in WORKLOADS.items():
            (Path(folder) / f"{name}.yaml").write_text(make(), encoding="utf-8")
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(max(1, min(procs, len(todo))), maxtasksperchild=1) as pool:
            jobs = [pool.apply_async(run_cell, (cell, folder)) for cell in todo]
            return [job.get() for job in jobs]


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.3f}"
    return f"{med:.3f} [{min(values):.3f}-{max(values):.3f}]"


def table(results: list[RunStats]) -> str:
    groups: dict[tuple[str, str, str], list[RunStats]] = defaultdict(list)
    for r in results:
        groups[(r.workload, r.trace, r.policy)].append(r)
    order = {name: i for i, name in enumerate(POLICIES)}
    trace_order = {name: i for i, name in enumerate(TRACES)}
    lines = [
        "| workload | trace | policy | seeds | makespan/oracle median [min-max] | rej/success "
        "| utilization | to 0.9 C after a rise, s (missed) | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    workload_order = {name: i for i, name in enumerate(WORKLOADS)}
    for key in sorted(groups, key=lambda k: (workload_order[k[0]], trace_order[k[1]], order[k[2]])):
        runs = groups[key]
        rej = statistics.median(r.rej_per_success for r in runs)
        util = statistics.median(r.utilization for r in runs)
        rises = [t for r in runs for t in r.rise_times]
        missed = sum(r.rises_missed for r in runs)
        rise = f"{statistics.median(rises):.1f} ({missed})" if rises else f"- ({missed})"
        if key[2] != "flowpipe":
            rise = "-"
        failed = sum(r.failed for r in runs)
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {len(runs)} | {spread([r.ratio for r in runs])} "
            f"| {rej:.2f} | {util:.2f} | {rise} | {failed} |"
        )
    return "\n".join(lines)


def verdicts(results: list[RunStats]) -> list[str]:
    """The --quick claims: flowpipe vs fixed-3 speed and vs fixed-20 rejections, per trace."""
    by: dict[tuple[str, str, str], list[RunStats]] = defaultdict(list)
    for r in results:
        by[(r.workload, r.trace, r.policy)].append(r)
    lines = []
    for (workload, trace, policy), runs in sorted(by.items()):
        if policy != "flowpipe":
            continue
        f3 = by.get((workload, trace, "fixed-3"))
        f20 = by.get((workload, trace, "fixed-20"))
        me = statistics.median(r.makespan for r in runs)
        parts = [f"{workload} {trace}:"]
        for other in ("baseline", "told"):
            if theirs := by.get((workload, trace, other)):
                ratios = paired(runs, theirs)
                if ratios:
                    parts.append(f"{statistics.median(ratios):.3f}x {other}'s makespan")
        if f3:
            speedup = statistics.median(r.makespan for r in f3) / me
            parts.append(f"{speedup:.2f}x faster than fixed-3")
        if f20:
            mine = statistics.median(r.rej_per_success for r in runs)
            theirs = statistics.median(r.rej_per_success for r in f20)
            frac = mine / theirs if theirs else math.nan
            parts.append(f"{frac:.3f} of fixed-20's rejections per success")
        lines.append(f"{parts[0]} {', '.join(parts[1:])}")
    return lines


def paired(mine: list[RunStats], theirs: list[RunStats]) -> list[float]:
    """Makespan ratios seed by seed (same trace and jobs), for the seeds both ran."""
    by_seed = {r.seed: r for r in theirs}
    return [r.makespan / by_seed[r.seed].makespan for r in mine if r.seed in by_seed]


def plots(results: list[RunStats], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        if not r.window:
            continue
        fig, ax = plt.subplots(figsize=(7, 2.6), dpi=80)
        cap_t = [t for t, _ in r.capacity] + [r.capacity[-1][0] + r.makespan]
        cap_c = [c for _, c in r.capacity] + [r.capacity[-1][1]]
        ax.step(cap_t, cap_c, where="post", label="hidden capacity C(t)", color="0.55")
        ax.step(
            [t for t, _ in r.window],
            [w for _, w in r.window],
            where="post",
            label="flowpipe window",
            color="tab:blue",
        )
        ax.set_xlim(0, r.window[0][0] + r.makespan)
        ax.set_ylim(0, 22)
        ax.set_xlabel("API seconds")
        ax.set_title(
            f"{r.workload}, {r.trace}, seed {r.seed}: makespan/oracle {r.ratio:.3f}", fontsize=9
        )
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        path = folder / f"window-{r.workload}-{r.trace}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, three traces, < 2 min")
    parser.add_argument(
        "--short",
        action="store_true",
        help="issue 17: short workloads and holds, ten accounts; flowpipe, baseline, told",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--flood-seeds",
        type=int,
        default=1,
        help="seeds for fixed-20 and unbounded (CPU-heavy) and one-at-a-time (slow)",
    )
    parser.add_argument("--scale", type=float, default=None, help="clock s per API s")
    parser.add_argument("--slow-scale", type=float, default=None, help="... for one-at-a-time")
    parser.add_argument(
        "--procs",
        dest="parallel",
        type=int,
        default=16,
        help="runs at once, one worker process each (they mostly wait)",
    )
    parser.add_argument(
        "--policies",
        default=None,
        help="comma-separated; default flowpipe,baseline,told with --short, else "
        "flowpipe,fixed-3,fixed-20,one,unbounded",
    )
    parser.add_argument(
        "--traces", default=None, help=f"comma-separated subset of {', '.join(TRACES)}"
    )
    parser.add_argument("--plots", type=Path, default=None, help="write window PNGs here")
    parser.add_argument("--save", type=Path, default=None, help="pickle the results here")
    parser.add_argument("--load", type=Path, default=None, help="tabulate saved results")
    args = parser.parse_args()
    plan = make_plan(args)
    if args.traces:
        keep = set(args.traces.split(","))
        unknown = keep - set(TRACES)
        if unknown:
            parser.error(f"unknown traces: {', '.join(sorted(unknown))}")
        plan = dataclasses.replace(
            plan,
            traces=tuple(t for t in plan.traces if t in keep),
            workloads={w: tuple(t for t in ts if t in keep) for w, ts in plan.workloads.items()},
            flood_traces=tuple(t for t in plan.flood_traces if t in keep),
        )
    default = "flowpipe,baseline,told" if args.short else "flowpipe,fixed-3,fixed-20,one,unbounded"
    wanted = [p for p in (args.policies or default).split(",") if p]
    unknown_policies = set(wanted) - set(POLICIES)
    if unknown_policies:
        parser.error(f"unknown policies: {', '.join(sorted(unknown_policies))}")
    light = cells(plan, [p for p in wanted if p not in FLOODS])
    heavy = cells(plan, [p for p in wanted if p in FLOODS])
    print(
        f"{len(light) + len(heavy)} runs, scale {plan.scale} (one-at-a-time {plan.slow_scale}); "
        f"{os.cpu_count()} cores",
        file=sys.stderr,
    )
    start = time.perf_counter()
    if args.load:
        results: list[RunStats] = pickle.loads(args.load.read_bytes())
    else:
        results = run_all(light + heavy, plan.parallel)
    if args.save:
        args.save.write_bytes(pickle.dumps(results))
    print(table(results))
    print()
    for line in verdicts(results):
        print(line)
    print(f"\n{len(results)} runs in {time.perf_counter() - start:.0f} s")
    if args.plots:
        for path in plots(results, args.plots):
            print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
