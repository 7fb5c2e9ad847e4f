"""Time how long ``flowpipe`` takes to start: ``--help`` and ``validate`` of small recipes.

Usage: .venv/bin/python benchmarks/startup.py [--runs 30] [--baseline DIR]

Every command runs ``--runs`` times as a fresh process, the commands taking turns (so a
burst of load on a shared machine hits all of them alike), next to ``python -c pass``:
what any Python program pays before its first line. The figures are medians: wall time
(what a person waits) and CPU time of the child (user + system, from ``getrusage``;
steadier on a busy machine), and the wall time above ``python -c pass``.

``flowpipe`` is the console script beside this Python (as a user runs it), in a scratch
folder, with ``PYTHONPATH`` naming the checkout whose package is timed: this one, and
with ``--baseline DIR`` also another checkout (e.g. ``git worktree add ../base main``),
measured in the same rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
EXAMPLES = HERE / "examples"


def _commands() -> dict[str, list[str]]:
    script = Path(sys.executable).with_name("flowpipe")
    flowpipe = [str(script)] if script.exists() else [sys.executable, "-m", "flowpipe"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "flowpipe --help": [*flowpipe, "--help"],
        "flowpipe validate ci-smoke.yaml": [*flowpipe, "validate", str(EXAMPLES / "ci-smoke.yaml")],
        "flowpipe validate campaign.yaml": [*flowpipe, "validate", str(EXAMPLES / "campaign.yaml")],
    }


def _once(command: list[str], tree: Path, cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``command`` with ``tree``'s package."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout whose flowpipe package runs beside this one")
    args = parser.parse_args()
    trees = [("this", HERE)]
    if args.baseline is not None:
        trees.insert(0, ("baseline", args.baseline.resolve()))
    commands = _commands()
    walls: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for command in commands.values():  # warm the file cache once
            for _, tree in trees:
                _once(command, tree, scratch)
        for _ in range(args.runs):
            for name, command in commands.items():
                for label, tree in trees:
                    wall, cpu = _once(command, tree, scratch)
                    walls.setdefault((name, label), []).append(wall)
                    cpus.setdefault((name, label), []).append(cpu)
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores;"
          f" medians of {args.runs} runs, milliseconds")
    print(f"{'command':<34}{'tree':<10}{'wall':>8}{'cpu':>8}{'wall - python':>15}")
    for name in commands:
        for label, _ in trees:
            bare = statistics.median(walls["python -c pass", label])
            wall = statistics.median(walls[name, label])
            cpu = statistics.median(cpus[name, label])
            extra = "" if name == "python -c pass" else f"{(wall - bare) * 1e3:>15.0f}"
            print(f"{name:<34}{label:<10}{wall * 1e3:>8.0f}{cpu * 1e3:>8.0f}{extra}")


if __name__ == "__main__":
    main()
