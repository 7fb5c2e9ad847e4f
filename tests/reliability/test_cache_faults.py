"""A damaged cache and a full disk in real runs: reported, re-made, nothing partial."""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowpipe.cli import cli
from flowpipe.engine import run_recipe_async
from flowpipe.results import RunResult
from flowpipe.sim import SimThread, running_sim
from flowpipe.store import CachedGeneration, DiskCache, ResponseCache, sha256_hex
from flowpipe.store.responses import verify_cache

from .conftest import (
    CHAIN,
    CHAIN_NODES,
    SCALE,
    TOKEN,
    assert_outputs_whole,
    run_options,
    sim_config,
)


def _keys(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {node["id"]: node["key"] for node in manifest["nodes"]}


def _corrupt(cache: Path, keys: dict[str, str]) -> None:
    """Three kinds of damage, one per node."""
    store = DiskCache(cache)
    try:
        hero = CachedGeneration.from_json(store.get(f"gen:{keys['hero']}") or b"")
        sha = hero.images[0].sha256
        store.put(f"img:{sha}", (store.get(f"img:{sha}") or b"")[:500])  # truncated JPEG
        store.put(f"gen:{keys['closeup[angle=front]']}", b'{"images": [ garbage')
        poster_key = f"gen:{keys['poster']}"
        record = json.loads(store.get(poster_key) or b"")
        not_jpeg = b"GIF89a this is not a jpeg at all"
        record["images"][0]["sha256"] = sha256_hex(not_jpeg)  # hash matches, type does not
        store.put(f"img:{sha256_hex(not_jpeg)}", not_jpeg)
        store.put(poster_key, json.dumps(record).encode())
    finally:
        store.close()


async def _damage_and_rerun(
    recipe: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path, dict[str, str]], None],
) -> tuple[RunResult, list[str], int]:
    """Run, damage the cache, run again: the second result, its warnings, requests re-made."""
    async with running_sim(sim_config()) as sim:
        first = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path))
        assert first.exit_code == 0, first.message
        damage(tmp_path / "cache", _keys(tmp_path / "out"))
        before = sim.stats()["generations"]
        caplog.set_level(logging.WARNING, logger="flowpipe.cache")
        second = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path))
        remade = sim.stats()["generations"] - before
    assert second.exit_code == 0, second.message
    warnings = [r.getMessage() for r in caplog.records if "is corrupt" in r.getMessage()]
    return second, warnings, remade


async def test_corrupt_entries_are_reported_once_and_remade(
    write_recipe: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    second, warnings, remade = await _damage_and_rerun(
        write_recipe(CHAIN), tmp_path, caplog, _corrupt
    )
    assert len(warnings) == 3, warnings  # each damaged entry reported exactly once
    assert second.summary["corrupt_cache_entries"] == 3
    assert remade == 3  # hero, closeup[angle=front], poster; closeup[angle=side] cached
    assert second.summary["cached"] == CHAIN_NODES - 3
    assert assert_outputs_whole(tmp_path / "out") == 2 * CHAIN_NODES
    store = DiskCache(tmp_path / "cache")
    try:
        report = verify_cache(ResponseCache(store))
    finally:
        store.close()
    assert len(report.corrupt) == 1  # only the orphaned GIF bytes are left unreferenced
    assert report.corrupt[0].startswith("img:")


def test_disk_full_mid_run_is_one_clear_line_and_loses_nothing_finished(
    write_recipe: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write_recipe(CHAIN)
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 3:  # hero's two images fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    with SimThread(sim_config()) as sim:
        monkeypatch.setattr(os, "fsync", fsync)
        result = CliRunner().invoke(
            cli,
            ["run", str(recipe), "-o", str(tmp_path / "out"), "--plain", "--no-report",
             "--time-scale", str(SCALE), "--cache-dir", str(tmp_path / "cache")],
            env={"USEAPI_TOKEN": TOKEN, "FLOWPIPE_API_URL": sim.base_url},
        )
        monkeypatch.setattr(os, "fsync", real_fsync)
    assert result.exit_code == 1, result.output
    last = result.stderr.splitlines()[-1]  # the CLI's own error line, after the progress
    assert last.startswith("flowpipe: disk full while writing "), result.stderr
    assert "finished images are in the cache" in last
    assert_outputs_whole(tmp_path / "out")  # no *.tmp, every .jpg decodes
    assert (tmp_path / "out" / "hero" / "default" / "0.jpg").exists()
    store = DiskCache(tmp_path / "cache")
    try:
        cache = ResponseCache(store)
        report = verify_cache(cache)
        assert report.corrupt == ()
        assert report.generations >= 2  # hero and the node whose files could not be written
    finally:
        store.close()


def test_full_disk_under_the_cache_is_one_line_and_leaves_no_claim(
    write_recipe: Callable[..., Path], tmp_path: Path, full_disk: Callable[[Path], None]
) -> None:
    """Claims are written first: a full disk there stops the run before anything is sent."""
    recipe = write_recipe(CHAIN)
    cache = tmp_path / "cache"
    full_disk(cache / "claims")
    with SimThread(sim_config()) as sim:
        result = CliRunner().invoke(
            cli,
            ["run", str(recipe), "-o", str(tmp_path / "out"), "--plain", "--no-report",
             "--time-scale", str(SCALE), "--cache-dir", str(cache)],
            env={"USEAPI_TOKEN": TOKEN, "FLOWPIPE_API_URL": sim.base_url},
        )
        sent = sim.stats()["generations"]
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"flowpipe: disk full in the cache folder {cache}"), result.stderr
    assert sent == 0
    assert [p.name for p in (cache / "claims").iterdir()] == []


def _plant_pickle_and_folder(cache: Path, keys: dict[str, str]) -> None:
    """A pickle where hero's record was; a folder where an image of closeup's value file was."""
    import sqlite3

    import diskcache

    store = DiskCache(cache)
    try:
        record = CachedGeneration.from_json(store.get(f"gen:{keys['closeup[angle=front]']}") or b"")
    finally:
        store.close()
    raw = diskcache.Cache(str(cache))  # the default Disk pickles what is not bytes
    raw.set(f"gen:{keys['hero']}", {"images": "pickled"})
    raw.close()
    db = sqlite3.connect(cache / "cache.db")
    (filename,) = db.execute(
        "SELECT filename FROM Cache WHERE key = ?", (f"img:{record.images[0].sha256}",)
    ).fetchone()
    db.close()
    value = cache / filename
    value.unlink()
    value.mkdir()


async def test_a_pickle_or_a_folder_in_the_cache_is_reported_and_remade(
    write_recipe: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/caching.md: a damaged entry is reported once as a warning and re-made."""
    second, warnings, remade = await _damage_and_rerun(
        write_recipe(CHAIN), tmp_path, caplog, _plant_pickle_and_folder
    )
    assert len(warnings) == 2, warnings
    assert remade == 2  # hero (its record) and closeup[angle=front] (its image)
    assert any("pickle" in w for w in warnings) and any("value file" in w for w in warnings)
    assert second.summary["corrupt_cache_entries"] == 2
    assert assert_outputs_whole(tmp_path / "out") == 2 * CHAIN_NODES


def test_a_run_on_a_damaged_index_says_what_to_do_and_repair_keeps_the_work(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    """Overwritten cache.db header: run names the file and the fix; after it, nothing is re-sent."""
    import sqlite3

    recipe = write_recipe(CHAIN)
    cache = tmp_path / "cache"
    args = ["run", str(recipe), "-o", str(tmp_path / "out"), "--plain", "--no-report",
            "--time-scale", str(SCALE), "--cache-dir", str(cache)]
    with SimThread(sim_config()) as sim:
        env = {"USEAPI_TOKEN": TOKEN, "FLOWPIPE_API_URL": sim.base_url}
        assert CliRunner().invoke(cli, args, env=env).exit_code == 0
        db = sqlite3.connect(cache / "cache.db")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        with (cache / "cache.db").open("r+b") as fh:
            fh.write(b"\0" * 64)
        made = sim.stats()["generations"]
        broken = CliRunner().invoke(cli, args, env=env)
        assert broken.exit_code == 1
        assert isinstance(broken.exception, SystemExit) and "Traceback" not in broken.output
        last = broken.stderr.splitlines()[-1]
        assert last.startswith(f"flowpipe: the cache index {cache / 'cache.db'} is damaged"), last
        assert "flowpipe cache verify --repair" in last
        repaired = CliRunner().invoke(cli, ["cache", "verify", "--repair", "--cache-dir",
                                            str(cache)])
        assert repaired.exit_code == 0, repaired.output
        again = CliRunner().invoke(cli, args, env=env)
        assert again.exit_code == 0, again.output
        assert sim.stats()["generations"] == made  # every node came from the rebuilt cache
