"""A fully cached re-run into a new output folder: how long its report takes.

    .venv/bin/python benchmarks/report_reuse.py                              # 2,000 images
    .venv/bin/python benchmarks/report_reuse.py --baseline ../base --repeat 5   # side by side

The recipe is ``benchmarks/overhead.py``'s shape (500 nodes of 4 images on the
embedded simulator). Per tree, a first run fills a fresh cache folder (report included, so its
thumbnails are drawn once); then each repeat is a fresh process that runs the recipe
again, everything from the cache, into a folder that did not exist, report included.
The figures of a repeat: the whole ``run_recipe`` call, and ``write_report`` within it
(wall seconds, and CPU seconds of the whole process while it ran, its thumbnail
threads included, which the machine's load disturbs less). Medians over the repeats.

``--baseline TREE`` runs the same with ``TREE/.venv/bin/python`` (another worktree,
its own editable install and cache), alternating with this tree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import images_recipe  # the same 2,000-image recipe

TREE = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from pathlib import Path
import flowpipe.report
from flowpipe.engine import RunOptions, run_recipe
from flowpipe.sim import CapacitySpec, SimConfig

recipe, out, cache = sys.argv[1], sys.argv[2], sys.argv[3]
timed = {}
write_report = flowpipe.report.write_report

def timing(*args, **kwargs):  # the runner imports write_report from flowpipe.report
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return write_report(*args, **kwargs)
    finally:
        timed.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)

flowpipe.report.write_report = timing
options = RunOptions(out=Path(out), backend="sim", time_scale=0.0005, cache_dir=Path(cache),
                     sim=SimConfig(capacity=CapacitySpec(kind="constant", level=20)),
                     report=True, lock=False)
start = time.perf_counter()
result = run_recipe(Path(recipe), options)
seconds = time.perf_counter() - start
thumbs = Path(out) / ".thumbs"
print(json.dumps({"package": str(Path(flowpipe.report.__file__).parents[1]),
                  "seconds": seconds, "report_wall": timed["wall"], "report_cpu": timed["cpu"],
                  "cached": result.summary["cached"], "images": result.summary["images"],
                  "thumbs": sum(1 for _ in thumbs.iterdir()), "exit": result.exit_code}))
"""


def child(python: Path, recipe: Path, out: Path, cache: Path) -> dict[str, Any]:
    # From the recipe's folder: ``python -c`` puts the current folder first on sys.path,
    # and from a checkout that would import that checkout's flowpipe, not the tree's.
    proc = subprocess.run([str(python), "-c", CHILD, str(recipe), str(out), str(cache)],
                          capture_output=True, text=True, check=False, cwd=recipe.parent)
    if proc.returncode != 0:
        raise SystemExit(f"child run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another worktree to run beside this one")
    args = parser.parse_args()
    trees = {"this tree": TREE}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    with tempfile.TemporaryDirectory(prefix="flowpipe-reuse-") as tmp:
        work = Path(tmp)
        recipe = images_recipe(work, args.images)
        pythons = {label: tree / ".venv" / "bin" / "python" for label, tree in trees.items()}
        firsts = {label: child(python, recipe, work / label / "first", work / label / "cache")
                  for label, python in pythons.items()}
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
        for i in range(args.repeat):
            for label, python in pythons.items():  # alternate: both see the same load
                run = child(python, recipe, work / label / f"new{i}", work / label / "cache")
                assert run["cached"] * 4 == run["images"] == args.images, run
                assert Path(run["package"]).parent == trees[label], run  # the tree's own code
                runs[label].append(run)
                print(f"{label} #{i}: {run}", file=sys.stderr, flush=True)
    print(f"{args.images:,} images, medians of {args.repeat} re-runs into a new folder")
    print("| tree | first run: report s | re-run: run_recipe s | re-run: report wall s |"
          " re-run: report CPU s | thumbnails in the new folder |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, done in runs.items():
        def med(key: str, done: list[dict[str, Any]] = done) -> float:
            return statistics.median(float(r[key]) for r in done)
        print(f"| {label} | {firsts[label]['report_wall']:.2f} | {med('seconds'):.2f} | "
              f"{med('report_wall'):.2f} | {med('report_cpu'):.2f} | "
              f"{int(med('thumbs')):,} |")


if __name__ == "__main__":
    main()
