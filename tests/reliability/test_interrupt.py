"""Ctrl-C twice: the second abandons requests in flight at once; nothing partial is kept.

A single Ctrl-C (wait for in-flight requests) is covered by tests/engine/test_resume.py.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flowpipe.sim import SimThread

from .conftest import assert_outputs_whole, done_nodes, flowpipe_proc, sim_config

SLOW = 0.05  # every request takes 20 API s = 1 s: the first wave ends together, the next
LATENCY = 20.0  # one is sent at once and is a whole second from done at Ctrl-C

MATRIX = """
version: 1
name: twice
defaults: {model: imagen-4, count: 1}
steps:
  tile:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}
    prompt: "pattern tile number {{ n }}"
"""


def test_second_sigint_abandons_in_flight_requests_exit_130(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(MATRIX)
    out = tmp_path / "out"
    config = sim_config(time_scale=SLOW, latency_min=LATENCY, latency_max=LATENCY)
    with SimThread(config) as sim:
        proc = flowpipe_proc(recipe, out, tmp_path / "cache", sim.base_url,
                             "--max-concurrency", "4", scale=SLOW)
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if len(done_nodes("".join(lines))) >= 3:  # the first wave (window 3) is done
                proc.send_signal(signal.SIGINT)
                break
        for line in proc.stdout:  # the first Ctrl-C is acknowledged before the second
            lines.append(line)
            if "stopping: interrupted" in line:
                proc.send_signal(signal.SIGINT)
                break
        # The rest from the same buffered stream: communicate() reads the pipe itself
        # and would drop lines the loops above already buffered.
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        try:
            rest = proc.stdout.read()
            proc.wait()
        finally:
            watchdog.cancel()
        for _ in range(200):  # let the abandoned requests finish server-side
            if sim.stats()["in_flight"] == 0:
                break
            time.sleep(0.05)
        served = sim.stats()["generations"]
    log = "".join(lines) + rest
    assert proc.returncode == 130, log
    done = done_nodes(log)
    # The process did not wait: the server finished requests the run abandoned (after one
    # Ctrl-C, tests/engine/test_resume.py shows served == done instead).
    assert served > len(done), log
    manifest = json.loads((out / "manifest.json").read_text())
    by_status = {n["id"]: n["status"] for n in manifest["nodes"]}
    assert {nid for nid, st in by_status.items() if st == "done"} == done
    assert all(st in ("done", "skipped") for st in by_status.values()), by_status
    assert assert_outputs_whole(out) == len(done)  # only whole images of finished nodes
    run = json.loads((out / "run.json").read_text())
    assert run["outcome"] == "interrupted"
