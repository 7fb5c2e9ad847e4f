"""The remote cache's cost: a fully cached run with a remote, and a run from the remote alone.

An S3-compatible server (moto's, on loopback, in this process) holds the remote. Every
run is a fresh interpreter running ``run_recipe`` on 500 nodes of 4 images (2,000
images) against the embedded simulator, no report, side by side in the same run:

    fill          empty caches: every node generated, written to the cache folder and
                  pushed to the remote (the lock file is written)
    local         everything in the cache folder, no remote          (the baseline)
    local+remote  everything in the cache folder, the remote configured: it must cost
                  nothing (one batch of local look-ups, no request); these two run
                  ``--repeat`` times each, interleaved, and the medians are compared
    remote only   an empty cache folder, ``--frozen`` with the lock: every generation
                  pulled and verified (16 objects at a time), then written out

    .venv/bin/python benchmarks/remote.py                 # 2,000 images
    .venv/bin/python benchmarks/remote.py --images 400
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import count_images, images_recipe

ROOT = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())

CHILD = """
import json, sys, time
from pathlib import Path
from flowpipe.engine import RunOptions, run_recipe
from flowpipe.sim import CapacitySpec, SimConfig
recipe, out, cache, remote, frozen = sys.argv[1:6]
options = RunOptions(out=Path(out), backend="sim", time_scale=0.0005, cache_dir=Path(cache),
                     sim=SimConfig(capacity=CapacitySpec(kind="constant", level=20)),
                     report=False, lock=True, remote=remote or None, use_remote=bool(remote),
                     frozen=frozen == "1")
start = time.perf_counter()
cpu0 = time.process_time()
result = run_recipe(Path(recipe), options)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu0,
                  "exit": result.exit_code, "summary": dict(result.summary),
                  "remote": result.run_info.get("remote")}))
"""


def child(recipe: Path, out: Path, cache: Path, remote: str, frozen: bool) -> dict[str, object]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(recipe), str(out), str(cache), remote,
         "1" if frozen else "0"],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    row: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process"] = wall
    row["peak_mb"] = peak / 1024 if peak > before else None
    row["images"] = count_images(out)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="cached runs of each kind")
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret",
                      AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    remote = f"s3://{bucket}/bench"
    rows: list[tuple[str, dict[str, object]]] = []
    try:
        with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
            folder = Path(tmp)
            recipe = images_recipe(folder, args.images)
            runs = [("fill", "out-fill", "cache", remote, False)]
            for i in range(args.repeat):  # interleaved, so load on the machine hits both
                runs += [("local", f"out-local-{i}", "cache", "", False),
                         ("local+remote", f"out-local-remote-{i}", "cache", remote, False)]
            runs.append(("remote only (--frozen, lock)", "out-remote", "empty", remote, True))
            for name, out, cache, url, frozen in runs:
                row = child(recipe, folder / out, folder / cache, url, frozen)
                rows.append((name, row))
                print(name, json.dumps(row), file=sys.stderr, flush=True)
    finally:
        server.stop()
    print("| run | images written | run_recipe s | CPU s | process s | generated | pulled "
          "| pushed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows:
        shared = row.get("remote") or {}
        summary = row["summary"]
        assert isinstance(shared, dict) and isinstance(summary, dict)
        print(f"| {name} | {row['images']} | {float(row['seconds']):.2f} "
              f"| {float(row['cpu']):.2f} | {float(row['process']):.2f} "
              f"| {summary['api_calls']} | {shared.get('pulled', '-')} "
              f"| {shared.get('pushed', '-')} |")
    for kind in ("local", "local+remote"):
        times = sorted(float(r["seconds"]) for n, r in rows if n == kind)
        print(f"\n{kind}: run_recipe median {statistics.median(times):.2f} s "
              f"[{times[0]:.2f}-{times[-1]:.2f}] over {len(times)} runs")


if __name__ == "__main__":
    main()
