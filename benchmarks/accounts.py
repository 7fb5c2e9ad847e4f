"""Many accounts in one process: 10 accounts of capacity 20 (200 generations in flight).

The simulator serves in this process (one pre-drawn JPEG per shape, ``StockRenderer``,
so its drawing does not compete for the CPU), with ``capacity_per_account``: each
account has its own constant C = 20. The runner runs in a fresh child interpreter, so
its CPU seconds and peak RSS are its own: ``run_recipe`` with a disk cache and every
image written (no report, no lock). Side by side in the same run, on the same
per-account load (200 one-image requests per account):

    flowpipe   the adaptive limiter, one window per account
    fixed-20   20 in flight per account from the start: a client told the capacity

    +remote    flowpipe with a remote cache (moto's S3 server in a process of its
               own): every generation claimed across machines and written through.
               moto answers about 250 requests/s on this machine and a generation
               costs 4-5 of them, so these run at ``--remote-scale`` (1/2 of real
               time by default) beside flowpipe without a remote at the same scale

for 10 accounts and for 1 account (the one-account figures beside them). Makespan is
from the child's first request to its last node done, in API seconds; the oracle is the
simulator's fluid bound for the work it served (10 accounts: 10 x C).

    .venv/bin/python benchmarks/accounts.py                     # 6 runs, about 2 min
    .venv/bin/python benchmarks/accounts.py --scale 0.2 --per-account 60 --no-remote
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import TOKEN, independent_recipe, serve_sim

from flowpipe.sim import CapacitySpec, SimConfig

ROOT = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())

CHILD = """
import json, resource, sys, time
from pathlib import Path
from flowpipe.engine import RunOptions, run_recipe
from flowpipe.events import NodeDone, NodeStarted
from flowpipe.engine import RetryPolicy

recipe, out, cache, url, token, scale, fixed, remote = sys.argv[1:9]

class Stamps:
    first = last = None
    def handle(self, event):
        now = time.perf_counter()
        if isinstance(event, NodeStarted) and self.first is None:
            self.first = now
        elif isinstance(event, NodeDone):
            self.last = now

stamps = Stamps()
options = RunOptions(out=Path(out), backend="sim", base_url=url, token=token,
                     time_scale=float(scale), cache_dir=Path(cache), report=False, lock=False,
                     fixed_concurrency=int(fixed) or None, remote=remote or None,
                     use_remote=bool(remote),
                     retry=RetryPolicy(max_capacity_retries=100_000))
cpu0, wall0 = time.process_time(), time.perf_counter()
result = run_recipe(Path(recipe), options, sinks=[stamps])
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
print(json.dumps({
    "exit": result.exit_code, "summary": dict(result.summary), "cpu": cpu, "wall": wall,
    "makespan_real": stamps.last - stamps.first,
    "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


@contextlib.contextmanager
def simulator(config: SimConfig) -> Iterator[tuple[str, Any]]:
    """The simulator on its own thread and loop; yields (base_url, state)."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        box["stop"], box["loop"] = stop, asyncio.get_running_loop()
        async with serve_sim(config) as (url, state):
            box["url"], box["state"] = url, state
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield box["url"], box["state"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(30)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server in its own process; yields ``s3://BUCKET/bench``."""
    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret",
                      AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        for _ in range(100):  # up to 10 s for the server to listen
            try:
                client.create_bucket(Bucket=bucket)
                break
            except Exception:
                time.sleep(0.1)
        yield f"s3://{bucket}/bench"
    finally:
        proc.terminate()
        proc.wait(10)


def one_run(accounts: int, per_account: int, fixed: int, scale: float, seed: int,
            folder: Path, remote: str = "") -> dict[str, Any]:
    emails = tuple(f"acct{i}@example.com" for i in range(accounts))
    config = SimConfig(tokens=(TOKEN,), accounts=emails, time_scale=scale,
                       capacity=CapacitySpec(kind="constant", level=20),
                       capacity_per_account=True, reject_status="mixed", seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    recipe = folder / f"r{accounts}.yaml"
    recipe.write_text(independent_recipe(accounts * per_account), encoding="utf-8")
    with simulator(config) as (url, state):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(recipe), str(folder / f"out{accounts}-{fixed}"),
             str(folder / f"cache{accounts}-{fixed}-{bool(remote)}"), url, TOKEN, str(scale),
             str(fixed), remote],
            capture_output=True, text=True, check=False,
        )
        stats = state.stats()
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    images = int(child["summary"]["images"])
    rejected = sum(int(v) for k, v in stats["images_statuses"].items() if k in ("429", "503"))
    makespan = child["makespan_real"] / scale
    oracle = float(stats["oracle"]["makespan_api_seconds"])
    return {
        "accounts": accounts, "scale": scale,
        "policy": (f"fixed-{fixed}" if fixed else "flowpipe") + ("+remote" if remote else ""),
        "requests": accounts * per_account, "images": images,
        "failed": int(child["summary"]["nodes"]) - int(child["summary"]["done"]),
        "makespan": makespan, "oracle": oracle, "ratio": makespan / oracle,
        "rej_per_success": rejected / max(1, int(stats["generations"])),
        "max_concurrent": stats["max_concurrent"],
        "cpu": child["cpu"], "cpu_ms_per_image": 1000 * child["cpu"] / max(1, images),
        "wall": child["wall"], "peak_rss_mb": child["peak_rss_kb"] / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="real s per API s")
    parser.add_argument("--per-account", type=int, default=200, help="requests per account")
    parser.add_argument("--accounts", default="10,1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--remote-scale", type=float, default=0.5,
                        help="time scale of the runs with and without a remote")
    parser.add_argument("--no-remote", action="store_true", help="skip the remote runs")
    args = parser.parse_args()
    counts = [int(a) for a in args.accounts.split(",")]
    plan = [(n, fixed, False, args.scale) for n in counts for fixed in (0, 20)]
    if not args.no_remote:
        plan += [(counts[0], 0, False, args.remote_scale), (counts[0], 0, True,
                                                             args.remote_scale)]
    rows = []
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        for i, (accounts, fixed, with_remote, scale) in enumerate(plan):
            with contextlib.ExitStack() as stack:
                remote = stack.enter_context(s3_server()) if with_remote else ""
                row = one_run(accounts, args.per_account, fixed, scale, args.seed,
                              Path(tmp) / str(i), remote)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print("| accounts | policy | time scale | requests | makespan API s | oracle API s "
          "| makespan/oracle | rej/success | max in flight | CPU s | CPU ms/image "
          "| peak RSS MB | failed |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['accounts']} | {r['policy']} | {r['scale']} | {r['requests']:,} "
              f"| {r['makespan']:.1f} "
              f"| {r['oracle']:.1f} | {r['ratio']:.3f} | {r['rej_per_success']:.2f} "
              f"| {r['max_concurrent']} | {r['cpu']:.1f} | {r['cpu_ms_per_image']:.2f} "
              f"| {r['peak_rss_mb']:.0f} | {r['failed']} |")


if __name__ == "__main__":
    main()
