"""Killed and interrupted runs: nothing finished is sent twice or lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image

from flowpipe.sim import CapacitySpec, SimConfig, SimThread

from .conftest import TOKEN, all_files

SLOW = 0.05  # 10-20 API seconds become 0.5-1 s: slow enough to kill halfway

MATRIX = """
version: 1
name: resume
defaults: {model: imagen-4, count: 1}
steps:
  tile:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}
    prompt: "pattern tile number {{ n }}"
  mosaic:
    context: ["tile[n=1].0", "tile[n=2].0"]
    prompt: "a mosaic of the first two tiles"
"""


def _flowpipe(recipe: Path, out: Path, cache: Path, base_url: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "USEAPI_TOKEN": TOKEN,
        "FLOWPIPE_API_URL": base_url,
        "FLOWPIPE_CACHE_DIR": str(cache),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flowpipe", "run", str(recipe), "-o", str(out), "--plain",
         "--no-report", "--max-concurrency", "3", "--time-scale", str(SLOW)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _config() -> SimConfig:
    return SimConfig(tokens=(TOKEN,), time_scale=SLOW, seed=1,
                     capacity=CapacitySpec(kind="constant", level=20))


def _done_nodes(lines: list[str]) -> set[str]:
    return {line.split("] done ", 1)[1].split(" in ")[0] for line in lines if "] done " in line}


def _signal_after(proc: subprocess.Popen[str], done: int, sig: signal.Signals) -> list[str]:
    """Read the run's lines until ``done`` nodes finished, then send ``sig``."""
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if len(_done_nodes(lines)) >= done:
            proc.send_signal(sig)
            break
    return lines


def test_sigkill_halfway_then_rerun_sends_nothing_twice(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(MATRIX)
    with SimThread(_config()) as sim:
        proc = _flowpipe(recipe, tmp_path / "out", tmp_path / "cache", sim.base_url)
        lines = _signal_after(proc, 4, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "".join(lines) + proc.stdout.read()
        finished_first = _done_nodes(lines)
        # the killed run's records of the nodes it finished are on disk (issue 17)
        journal = (tmp_path / "out" / ".run.jsonl").read_text().splitlines()
        recorded = {json.loads(line)[1] for line in journal if line.startswith('["node"')}
        assert finished_first <= recorded
        for _ in range(200):  # requests the killed run had in flight still finish server-side
            if sim.stats()["in_flight"] == 0:
                break
            time.sleep(0.05)
        served_first = sim.stats()["generations"]

        again = _flowpipe(recipe, tmp_path / "out", tmp_path / "cache", sim.base_url)
        out2, _ = again.communicate(timeout=120)
        assert again.returncode == 0, out2
        lines2 = out2.splitlines()
        served_second = sim.stats()["generations"] - served_first
        made_second = _done_nodes(lines2)

    assert not finished_first & made_second, out2  # no finished node was sent again
    for nid in finished_first:
        assert f"cached {nid}" in out2
    cached_second = {line.split("] cached ", 1)[1] for line in lines2 if "] cached " in line}
    assert finished_first <= cached_second
    assert served_second == len(made_second) == 13 - len(cached_second)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert len(run["nodes"]) == 13  # the re-run's own records, its journal written out
    assert not (tmp_path / "out" / ".run.jsonl").exists()
    assert not (tmp_path / "out" / ".manifest.jsonl").exists()

    with SimThread(_config()) as sim:  # the same recipe, never interrupted
        clean = _flowpipe(recipe, tmp_path / "clean", tmp_path / "cache2", sim.base_url)
        clean.communicate(timeout=120)
        assert clean.returncode == 0
    resumed = {k: v for k, v in all_files(tmp_path / "out").items() if k.endswith(".jpg")}
    uninterrupted = {k: v for k, v in all_files(tmp_path / "clean").items() if k.endswith(".jpg")}
    assert resumed == uninterrupted
    assert len(resumed) == 13


def test_sigint_stops_sending_and_exits_130_with_nothing_partial(
    write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(MATRIX)
    with SimThread(_config()) as sim:
        proc = _flowpipe(recipe, tmp_path / "out", tmp_path / "cache", sim.base_url)
        lines = _signal_after(proc, 2, signal.SIGINT)
        # The rest from the same buffered stream: communicate() reads the pipe itself
        # and would drop lines the loops above already buffered.
        assert proc.stdout is not None
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        try:
            rest = proc.stdout.read()
            proc.wait()
        finally:
            watchdog.cancel()
        served = sim.stats()["generations"]
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    done = _done_nodes(lines + rest.splitlines())
    assert served == len(done)  # in-flight requests finished and were kept
    assert len(done) < 13
    for path in (tmp_path / "out").rglob("*.jpg"):
        with Image.open(path) as im:
            im.load()
    assert (tmp_path / "out" / "manifest.json").exists()
