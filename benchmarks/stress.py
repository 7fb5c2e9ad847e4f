"""Soak: thousands of requests through a faulty simulator; memory flat, every node accounted.

Usage: .venv/bin/python benchmarks/stress.py [--nodes 5000] [--time-scale 0.0005]
       [--fault-rate 0.05] [--moderation-rate 0.05] [--capacity walk] [--keep]

The simulator runs in this process (a SimThread) with capacity rejections, moderation,
connection resets and truncated bodies turned on. ``flowpipe`` runs the recipe in a
child process so its memory is measured alone: an event sink samples the child's RSS
each time another tenth of the nodes has finished. The check is that RSS after every
node is within 20% of RSS after the first tenth (500 of 5,000). Then every node of
the manifest must be done, or failed/skipped with a named reason; every image on disk
must match the SHA-256 the manifest gives it and decode; no temp file may be left;
the cache must verify clean. Exits 1 if any of that does not hold.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

TOKEN = "stress-secret-token-5b1e"  # a local simulator's test token
DETAILS = 50  # nodes that take a reference, so uploads, 403s and skips happen too


ROW = 50  # tiles per matrix row: a matrix list holds at most 10,000 values (the schema)


def write_recipe(folder: Path, nodes: int) -> Path:
    """A recipe of ``nodes`` single-image nodes: tiles, and details that use a tile.

    Tiles are a (row x col) matrix so that 100,000 nodes stay within the schema's
    10,000 values per list; a remainder that does not fill a row is a step of its own.
    """
    tiles = nodes - DETAILS
    if tiles < DETAILS:
        raise SystemExit(f"--nodes must be at least {2 * DETAILS}")
    rows, rest = divmod(tiles, ROW)
    lines = [
        "version: 1",
        f"name: stress-{nodes}",
        "defaults: {model: imagen-4, aspectRatio: square, count: 1}",
        "steps:",
    ]
    if rows:
        lines += [
            "  tile:",
            f"    matrix: {{row: [{', '.join(str(i) for i in range(rows))}],"
            f" col: [{', '.join(str(i) for i in range(ROW))}]}}",
            f'    prompt: "stress tile number {{{{ row * {ROW} + col }}}}"',
        ]
    if rest:
        lines += [
            "  edge:",
            f"    matrix: {{n: [{', '.join(str(i) for i in range(rest))}]}}",
            '    prompt: "stress edge tile number {{ n }}"',
        ]
    lines += [
        "  detail:",
        f"    matrix: {{n: [{', '.join(str(i) for i in range(DETAILS))}]}}",
        f'    context: ["tile[row={{{{ n // {ROW} }}}},col={{{{ n % {ROW} }}}}].0"]'
        if rows else '    context: ["edge[n={{ n }}].0"]',  # details use the first tiles
        '    prompt: "detail of tile {{ n }}"',
        "",
    ]
    path = folder / "stress.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def rss_kib() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


class RssSampler:
    """An event sink that notes (nodes ended, RSS in KiB) each time another tenth of
    ``total`` nodes has ended."""

    def __init__(self, total: int) -> None:
        self.samples: list[tuple[int, int]] = []
        self.tenth = max(1, total // 10)
        self.finished = 0

    def handle(self, event: Any) -> None:
        from flowpipe.events import NodeCached, NodeDone, NodeFailed, NodeSkipped

        if isinstance(event, NodeDone | NodeFailed | NodeSkipped | NodeCached):
            self.finished += 1
            if self.finished % self.tenth == 0:
                self.samples.append((self.finished, rss_kib()))


def child(recipe: Path, out: Path, cache: Path, base_url: str, scale: float,
          total: int) -> None:
    """Run the recipe here and print one JSON line: result and RSS samples."""
    from flowpipe.engine import RunOptions, run_recipe
    sampler = RssSampler(total)
    options = RunOptions(out=out, backend="sim", base_url=base_url, token=TOKEN,
                         time_scale=scale, cache_dir=cache, report=False, seed=1)
    started = time.monotonic()
    result = run_recipe(recipe, options, sinks=[sampler])
    wall = time.monotonic() - started
    print(json.dumps({
        "exit_code": result.exit_code,
        "message": result.message,
        "summary": dict(result.summary),
        "wall_seconds": round(wall, 1),
        "rss_samples_kib": sampler.samples,
        "rss_end_kib": rss_kib(),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


def check_outputs(out: Path, cache: Path) -> dict[str, Any]:
    """Account for every node and check every file the run left."""
    from flowpipe.store import DiskCache, ResponseCache
    from flowpipe.store.responses import verify_cache

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    statuses: dict[str, int] = {}
    unexplained: list[str] = []
    bad_files: list[str] = []
    checked = 0
    for node in manifest["nodes"]:
        statuses[node["status"]] = statuses.get(node["status"], 0) + 1
        if node["status"] != "done":
            error = node.get("error") or {}
            if not (error.get("type") and error.get("message")):
                unexplained.append(node["id"])
            continue
        for image in node["images"]:
            data = (out / image["path"]).read_bytes()
            checked += 1
            # the file carries a provenance packet (issue 14): its own hash is file_sha256
            want = image.get("file_sha256") or image["sha256"]
            if hashlib.sha256(data).hexdigest() != want:
                bad_files.append(image["path"])
                continue
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    temps = [str(p) for p in out.rglob("*") if p.name.endswith(".tmp")]
    store = DiskCache(cache)
    try:
        report = verify_cache(ResponseCache(store))
    finally:
        store.close()
    return {
        "nodes": len(manifest["nodes"]),
        "statuses": statuses,
        "unexplained": unexplained,
        "images_checked": checked,
        "bad_files": bad_files,
        "temp_files": temps,
        "cache_generations": report.generations,
        "cache_corrupt": list(report.corrupt),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--time-scale", type=float, default=0.0005)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--moderation-rate", type=float, default=0.05)
    parser.add_argument("--capacity", default="walk")
    parser.add_argument("--keep", action="store_true", help="Keep the temp folder.")
    parser.add_argument("--child", nargs=6, metavar=("RECIPE", "OUT", "CACHE", "URL", "SCALE",
                                                    "TOTAL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        recipe, out, cache, url, scale, total = args.child
        child(Path(recipe), Path(out), Path(cache), url, float(scale), int(total))
        return 0

    from flowpipe.sim import SimConfig, SimThread, parse_capacity

    config = SimConfig(tokens=(TOKEN,), time_scale=args.time_scale, seed=11,
                       capacity=parse_capacity(args.capacity), reject_status="mixed",
                       fault_rate=args.fault_rate, moderation_rate=args.moderation_rate)
    work = Path(tempfile.mkdtemp(prefix="flowpipe-stress-"))
    recipe = write_recipe(work, args.nodes)
    out, cache = work / "out", work / "cache"
    with SimThread(config) as sim:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(recipe), str(out), str(cache),
             sim.base_url, str(args.time_scale), str(args.nodes)],
            capture_output=True, text=True, check=False,
        )
        stats = sim.stats()
    if proc.returncode != 0 or not proc.stdout.strip():
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return 1
    run = json.loads(proc.stdout.strip().splitlines()[-1])
    files = check_outputs(out, cache)
    samples = run["rss_samples_kib"]
    first, last = samples[0][1], samples[-1][1]
    growth = last / first - 1.0
    rejected = stats["images_statuses"].get("429", 0) + stats["images_statuses"].get("503", 0)
    report = {
        "config": {"nodes": args.nodes, "time_scale": args.time_scale,
                   "fault_rate": args.fault_rate, "moderation_rate": args.moderation_rate,
                   "capacity": args.capacity},
        "run": run,
        "sim": {k: stats[k] for k in ("images_requests", "statuses", "images_statuses",
                                       "faults", "generations", "uploads", "max_concurrent")},
        "rejections_per_success": round(rejected / max(1, stats["generations"]), 3),
        "files": files,
        "rss_growth": round(growth, 3),
        "work_dir": str(work) if args.keep else None,
    }
    print(json.dumps(report, indent=2))
    ok = (
        growth <= 0.20
        and files["nodes"] == args.nodes
        and not files["unexplained"]
        and not files["bad_files"]
        and not files["temp_files"]
        and not files["cache_corrupt"]
        and run["exit_code"] in (0, 1)
    )
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print("stress: " + ("OK" if ok else "FAILED"), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
