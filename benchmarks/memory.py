"""Memory of a long run on the embedded simulator: peak RSS, and growth as the run goes.

    .venv/bin/python benchmarks/memory.py                                # 5,000 and 50,000
    .venv/bin/python benchmarks/memory.py --nodes 5000 --baseline ../base  # side by side

Each run is a fresh process that runs ``benchmarks/stress.py``'s recipe (single-image
tiles and 50 details that use a tile) the way ``flowpipe run`` does without a token:
the simulator is embedded in the run's process, with capacity walking between 3 and 20,
5% moderation and 5% resets and truncated bodies, so retries happen throughout. A
fresh cache folder, no report, no lock. An event sink samples the process's RSS each
time another tenth of the nodes has ended (the first sample of a 50,000-node run is
at 5,000 nodes). The figures:

- RSS at the first and the last tenth, and the growth between them (the run going on);
- peak RSS (``ru_maxrss`` from ``wait4``: the whole process, plan, the end's
  manifest, run.json and the result included), and its growth over the first tenth.

``--baseline TREE`` runs the same recipe with ``TREE/.venv/bin/python`` (another
worktree with its own editable install) alternately with this tree, in the same
session. Memory does not depend on the machine's load; wall time does (it is mostly
the simulator drawing real JPEGs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stress import RssSampler, rss_kib, write_recipe

HERE = Path(__file__).resolve()
TREE = HERE.parents[1]


def child(recipe: Path, out: Path, cache: Path, scale: float, total: int) -> None:
    """Run the recipe here on the embedded simulator; print one JSON line."""
    from flowpipe.engine import RunOptions, run_recipe
    from flowpipe.sim import SimConfig, parse_capacity

    sampler = RssSampler(total)
    # the embedded default (ids kept in the cache folder), with faults and moderation on
    sim = SimConfig(seed=11, capacity=parse_capacity("walk"), reject_status="mixed",
                    fault_rate=0.05, moderation_rate=0.05, media_folder=cache / "sim-media")
    options = RunOptions(out=out, backend="sim", time_scale=scale, cache_dir=cache, sim=sim,
                         report=False, lock=False, seed=1)
    started = time.monotonic()
    result = run_recipe(recipe, options, sinks=[sampler])
    import flowpipe

    print(json.dumps({
        "package": str(Path(flowpipe.__file__).resolve().parents[1]),
        "exit_code": result.exit_code,
        "summary": dict(result.summary),
        "wall_seconds": round(time.monotonic() - started, 1),
        "samples": sampler.samples,
        "rss_after_kib": rss_kib(),
    }))


def measure(python: str, nodes: int, scale: float, work: Path) -> dict[str, Any]:
    """One run in a fresh process of ``python``: its JSON line and its own peak RSS."""
    recipe = write_recipe(work, nodes)
    out, cache = work / "out", work / "cache"
    command = [python, str(HERE), "--child", str(recipe), str(out), str(cache), str(scale),
               str(nodes)]
    with (work / "stdout").open("w") as stdout, (work / "stderr").open("w") as stderr:
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
    lines = (work / "stdout").read_text().strip().splitlines()
    if proc.returncode != 0 or not lines:
        error = (work / "stderr").read_text()[-3000:]
        raise SystemExit(f"run failed ({proc.returncode}):\n{error}")
    run: dict[str, Any] = json.loads(lines[-1])
    tree = Path(python).parents[2]
    assert Path(run["package"]) == tree.resolve(), f"{python} ran {run['package']}"
    run["peak_kib"] = usage.ru_maxrss
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return run


def _row(label: str, nodes: int, runs: list[dict[str, Any]]) -> str:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    first = med([r["samples"][0][1] / 1024 for r in runs])
    last = med([r["samples"][-1][1] / 1024 for r in runs])
    peak = med([r["peak_kib"] / 1024 for r in runs])
    wall = med([r["wall_seconds"] for r in runs])
    at = runs[0]["samples"][0][0]
    return (f"| {label} | {nodes:,} | {len(runs)} | {wall:.0f} | {first:.0f} (at {at:,}) | "
            f"{last:.0f} | {last / first - 1:+.1%} | {peak:.0f} | {peak / first - 1:+.1%} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="5000,50000")
    parser.add_argument("--time-scale", type=float, default=0.002,
                        help="the embedded simulator's time scale (1.0 = real latency)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", type=Path, help="another worktree to run beside this one")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--child", nargs=5, metavar=("RECIPE", "OUT", "CACHE", "SCALE", "TOTAL"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        recipe, out, cache, scale, total = args.child
        child(Path(recipe), Path(out), Path(cache), float(scale), int(total))
        return 0

    trees = {"this tree": TREE}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for nodes in (int(n) for n in args.nodes.split(",") if n):
        for _ in range(args.repeat):
            for label, tree in trees.items():  # alternate, so both see the same load
                python = str(tree / ".venv" / "bin" / "python")
                with tempfile.TemporaryDirectory(prefix="flowpipe-memory-") as tmp:
                    run = measure(python, nodes, args.time_scale, Path(tmp))
                results.setdefault((label, nodes), []).append(run)
                print(f"{label} {nodes}: peak {run['peak_kib'] / 1024:.0f} MB, "
                      f"samples {[s[1] // 1024 for s in run['samples']]}, "
                      f"{run['wall_seconds']} s, exit {run['exit_code']}",
                      file=sys.stderr, flush=True)
    print(f"time scale {args.time_scale}; RSS in MB, medians over the repeats")
    print("| tree | nodes | runs | wall s | RSS at the first tenth | RSS at the last tenth |"
          " growth | peak RSS | peak vs first tenth |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (label, nodes), runs in results.items():
        print(_row(label, nodes, runs))
    if args.json is not None:
        args.json.write_text(json.dumps({f"{k[0]} {k[1]}": v for k, v in results.items()},
                                        indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
