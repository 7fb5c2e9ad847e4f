"""STEP.pick in a run: waiting for review (exit 5), picks feeding keys, stale picks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowpipe import exitcodes
from flowpipe.cli import cli
from flowpipe.engine import runner
from flowpipe.engine.clock import VirtualClock
from flowpipe.errors import PicksError
from flowpipe.results import RunResult
from flowpipe.store.cache import DiskCache
from flowpipe.store.lock import lock_path, read_lock
from flowpipe.store.picks import Picks, picks_path, read_picks, write_picks

from .conftest import virtual_run
from .fakeapi import FakeAPI

RECIPE = """
version: 1
name: review
defaults: {model: imagen-4, count: 3}
steps:
  hero:
    prompt: "trail shoe on a ridge"
    seed: {seed}
  poster:
    prompt: "poster of the shoe"
    context: [hero.pick]
    count: 1
  banner:
    prompt: "banner"
    context: [poster.0]
    count: 1
  alone:
    prompt: "an unrelated still life"
    count: 1
"""


def _recipe(write_recipe, seed: int = 1) -> Path:
    return write_recipe(RECIPE.replace("{seed}", str(seed)))


def _run(recipe: Path, tmp_path: Path) -> tuple[RunResult, FakeAPI]:
    api = FakeAPI(VirtualClock())
    return virtual_run(recipe, api, tmp_path), api


def _hero_images(result: RunResult, tmp_path: Path) -> list[str]:
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    hero = next(n for n in manifest["nodes"] if n["id"] == "hero")
    return [img["sha256"] for img in hero["images"]]


def _pick(recipe: Path, image: int, sha: str) -> None:
    path = picks_path(recipe)
    write_picks(path, read_picks(path).pick("hero", image, sha))


def test_without_a_pick_the_run_makes_the_rest_and_waits(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe)
    result, api = _run(recipe, tmp_path)
    assert result.outcome == "waiting" and not result.ok
    assert result.exit_code == exitcodes.WAITING == 5
    assert result.waiting == ("poster", "banner")
    assert {n: r.state for n, r in result.nodes.items()} == {
        "hero": "done", "poster": "waiting", "banner": "waiting", "alone": "done"}
    assert "no image of 'hero' is picked yet" in (result.nodes["poster"].reason or "")
    assert "upstream node 'poster' waits for review" in (result.nodes["banner"].reason or "")
    assert result.message and "flowpipe review" in result.message
    assert api.generations == 2  # hero and alone; nothing guessed for poster
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {n["id"]: n["status"] for n in manifest["nodes"]}["poster"] == "waiting"
    assert result.run_info["outcome"] == "waiting" and result.run_info["exit_code"] == 5
    assert result.summary["waiting"] == 2
    assert set(read_lock(lock_path(recipe)).nodes) == {"hero", "alone"}


def test_a_pick_feeds_the_key_and_changing_it_remakes_only_what_is_below(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe)
    first, _ = _run(recipe, tmp_path)
    shas = _hero_images(first, tmp_path)
    _pick(recipe, 1, shas[1])
    second, api = _run(recipe, tmp_path)
    assert second.ok, second.message
    assert api.generations == 2  # poster and banner; hero and alone from the cache
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    poster = next(n for n in manifest["nodes"] if n["id"] == "poster")
    assert poster["references"] == [{"role": "context", "text": "hero.pick", "sha256": shas[1]}]
    assert poster["request"]["contextReference_1"] == f"sha256:{shas[1]}"

    _pick(recipe, 2, shas[2])
    third, api = _run(recipe, tmp_path)
    assert third.ok
    remade = {n for n, r in third.nodes.items() if not r.cache_hit}
    # poster is re-made; banner follows if and only if poster's bytes changed (the fake
    # API draws from the request body, where the reference is an id, so they may not)
    assert "poster" in remade and remade <= {"poster", "banner"}
    assert api.generations == len(remade)
    assert third.nodes["poster"].key != second.nodes["poster"].key

    _pick(recipe, 1, shas[1])  # back to the first pick: everything is in the cache
    fourth, api = _run(recipe, tmp_path)
    assert fourth.ok and api.generations == 0
    assert fourth.nodes["poster"].key == second.nodes["poster"].key


def test_a_stale_pick_is_reported_and_not_moved(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe)
    first, _ = _run(recipe, tmp_path)
    old = _hero_images(first, tmp_path)
    _pick(recipe, 0, old[0])
    remade, _ = _run(_recipe(write_recipe, seed=2), tmp_path)  # hero makes new bytes
    assert remade.exit_code == 5
    poster = remade.nodes["poster"]
    assert poster.state == "waiting" and poster.error is not None
    assert poster.error.type == "StalePick"
    assert "stale" in (poster.reason or "") and old[0][:12] in (poster.reason or "")
    assert read_picks(picks_path(recipe)).get("hero") is not None  # the pick is kept as is


def test_the_same_bytes_at_another_index_are_still_stale(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe)
    first, _ = _run(recipe, tmp_path)
    shas = _hero_images(first, tmp_path)
    write_picks(picks_path(recipe), Picks(picks_path(recipe)).pick("hero", 0, shas[1]))
    again, _ = _run(recipe, tmp_path)
    assert again.nodes["poster"].state == "waiting"
    assert again.nodes["poster"].error is not None
    assert again.nodes["poster"].error.type == "StalePick"


def test_the_cli_exits_5_and_names_the_waiting_nodes_and_the_command(
    write_recipe, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    recipe = _recipe(write_recipe)
    out = tmp_path / "cli-out"
    args = ["run", str(recipe), "-o", str(out), "--plain", "--no-report",
            "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 5, result.output
    assert "waiting for review: poster" in result.stderr
    assert f"flowpipe review {out}" in result.stderr


def test_a_broken_picks_file_stops_the_run_before_anything_is_sent(
    write_recipe, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    recipe = _recipe(write_recipe)
    picks_path(recipe).write_text("hero:\n  image: one\n  sha256: x\n")
    result = CliRunner().invoke(cli, ["run", str(recipe), "-o", str(tmp_path / "o"), "--plain",
                                      "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2
    assert "recipe.picks.yaml:2:10:" in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_broken_picks_file_closes_the_cache_and_the_remote_it_opened(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's setup fails after the cache folder and the remote are open: both are
    closed before the error reaches the caller (review A-13)."""
    recipe = _recipe(write_recipe)
    picks_path(recipe).write_text("hero: [unclosed\n")
    closed: list[str] = []

    class Remote:  # what the runner opens for a remote cache, and closes
        def close(self) -> None:
            closed.append("remote")

    close = DiskCache.close

    def closing(self: DiskCache) -> None:
        closed.append("cache")
        close(self)

    monkeypatch.setattr(runner, "open_remote", lambda *a, **k: Remote())
    monkeypatch.setattr(DiskCache, "close", closing)
    with pytest.raises(PicksError):
        virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path, use_remote=True)
    assert sorted(closed) == ["cache", "remote"]
