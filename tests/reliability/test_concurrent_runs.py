"""Two ``flowpipe run`` processes share one cache folder and one simulator at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flowpipe.sim import SimThread
from flowpipe.store import DiskCache, ResponseCache
from flowpipe.store.responses import verify_cache

from .conftest import assert_outputs_whole, flowpipe_proc, sim_config

OVERLAP = 0.01  # 10-20 API s become 0.1-0.2 s: long enough for the two runs to overlap

# Same prompt template and explicit seed, so tile[n=5..8] have equal keys in both.
LEFT = """
version: 1
name: left
defaults: {model: imagen-4, count: 1}
steps:
  tile:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
    prompt: "pattern tile number {{ n }}"
    seed: 42
  mosaic:
    context: ["tile[n=5].0", "tile[n=8].0"]
    prompt: "a mosaic of two tiles"
    seed: 42
"""
RIGHT = LEFT.replace("name: left", "name: right").replace(
    "[1, 2, 3, 4, 5, 6, 7, 8]", "[5, 6, 7, 8, 9, 10, 11, 12]"
)


def test_two_processes_one_cache_both_finish_and_cache_verifies(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    left = write_recipe(LEFT, "left.yaml")
    right = write_recipe(RIGHT, "right.yaml")
    cache = tmp_path / "cache"
    with SimThread(sim_config(time_scale=OVERLAP)) as sim:
        procs = [
            flowpipe_proc(recipe, tmp_path / recipe.stem, cache, sim.base_url, scale=OVERLAP)
            for recipe in (left, right)
        ]
        logs = [proc.communicate(timeout=120)[0] for proc in procs]
        served = sim.stats()["generations"]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, log
    assert assert_outputs_whole(tmp_path / "left") == 9
    assert assert_outputs_whole(tmp_path / "right") == 9

    store = DiskCache(cache)
    try:
        report = verify_cache(ResponseCache(store))
    finally:
        store.close()
    assert report.corrupt == ()
    # 12 tiles (4 shared) + the mosaic: both mosaics reference tile 5 and 8 with equal
    # bytes, so they are one key as well.
    assert report.generations == 13
    # Claims in the cache folder: a key in flight in one process is not sent by the other.
    duplicates = served - report.generations
    assert duplicates == 0, f"{served} generations for {report.generations} keys"
