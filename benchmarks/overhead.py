"""Overhead bars of DESIGN section 8: planning, a fully cached re-run, peak memory.

    .venv/bin/python benchmarks/overhead.py                    # all three
    .venv/bin/python benchmarks/overhead.py --sizes 1000,10000 --images 2000

1. validate + plan of 1k/10k/100k nodes: ``benchmarks/plan_overhead.py``'s recipes and
   timer (bar: 10,000 nodes under 1 s).
2. 2,000 images (500 nodes of 4) run once against the embedded simulator at a tiny
   time scale with a disk cache, in a subprocess whose peak RSS (``ru_maxrss`` of the
   child) is the memory figure (bar: under 250 MB; the images really are written).
3. The same command again (same output folder) in a fresh subprocess, everything
   from the cache, report included; the time of the ``run_recipe`` call and of the
   whole process, interpreter start included (bar: 5 s).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_overhead import measure, write_matrix_recipe

CHILD = """
import json, sys, time
from pathlib import Path
from flowpipe.engine import RunOptions, run_recipe
from flowpipe.sim import CapacitySpec, SimConfig
recipe, out, cache, report = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
try:
    import flowpipe.report  # noqa: F401
except ImportError:
    report = False
options = RunOptions(out=Path(out), backend="sim", time_scale=0.0005, cache_dir=Path(cache),
                     sim=SimConfig(capacity=CapacitySpec(kind="constant", level=20)),
                     report=report, lock=False)
start = time.perf_counter()
result = run_recipe(Path(recipe), options)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "report": report, "exit": result.exit_code,
                  "summary": dict(result.summary)}))
"""


def images_recipe(folder: Path, images: int) -> Path:
    nodes = max(1, images // 4)
    values = ", ".join(str(i) for i in range(nodes))
    path = folder / "recipe.yaml"
    path.write_text(
        "version: 1\nname: overhead\n"
        "defaults: {model: imagen-4, aspectRatio: square, count: 4}\n"
        "steps:\n  shot:\n"
        f"    matrix: {{i: [{values}]}}\n"
        '    prompt: "catalogue shot {{ i }}"\n',
        encoding="utf-8",
    )
    return path


def child_run(
    recipe: Path, out: Path, cache: Path, report: bool
) -> tuple[dict[str, object], float, int]:
    """Run the recipe in a fresh interpreter: (its JSON line, process wall s, peak RSS KB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(recipe), str(out), str(cache), "1" if report else "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(f"child run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    line = proc.stdout.strip().splitlines()[-1]
    # ru_maxrss of children is the largest child so far: only a new maximum is this one's
    return json.loads(line), wall, peak if peak > before else -1


def count_images(out: Path) -> int:
    """JPEGs in the output folder, not counting the report's thumbnails."""
    return sum(1 for p in out.rglob("*.jpg") if ".thumbs" not in p.parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    print("| nodes | validate+plan wall s | cpu s |")
    print("|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",") if s):
        with tempfile.TemporaryDirectory() as tmp:
            best = measure(write_matrix_recipe(Path(tmp), size), args.repeat)
        print(f"| {best['nodes']:,} | {best['wall']:.3f} | {best['total']:.3f} |", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recipe = images_recipe(folder, args.images)
        first, first_wall, peak_kb = child_run(
            recipe, folder / "out1", folder / "cache", not args.no_report
        )
        written = count_images(folder / "out1")
        second, second_wall, _ = child_run(
            recipe, folder / "out1", folder / "cache", not args.no_report
        )
        cached = second["summary"]
        print()
        print("| run | images written | report | run_recipe s | process s | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        print(
            f"| first (fills the cache) | {written} | {first['report']} | "
            f"{float(first['seconds']):.2f} | {first_wall:.2f} | "
            f"{peak_kb / 1024:.0f} |"
        )
        print(
            f"| cached re-run | {count_images(folder / 'out1')} | "
            f"{second['report']} | {float(second['seconds']):.2f} | {second_wall:.2f} | - |"
        )
        print(f"\ncached re-run summary: {json.dumps(cached)}")


if __name__ == "__main__":
    main()
