"""flowpipe run against the simulator on loopback: images, cache, re-runs, faults, stops."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from flowpipe.engine import RunOptions, run_recipe_async
from flowpipe.sim import CapacitySpec, SimConfig, running_sim

from .conftest import CHAIN, SCALE, TOKEN, all_files


def _options(sim_url: str, tmp_path: Path, **extra: object) -> RunOptions:
    base: dict[str, object] = {
        "out": tmp_path / "out",
        "backend": "sim",
        "base_url": sim_url,
        "token": TOKEN,
        "time_scale": SCALE,
        "cache_dir": tmp_path / "cache",
        "report": False,
        "seed": 5,
    }
    base.update(extra)
    return RunOptions(**base)  # type: ignore[arg-type]


def _config(**extra: object) -> SimConfig:
    base: dict[str, object] = {
        "tokens": (TOKEN,),
        "time_scale": SCALE,
        "capacity": CapacitySpec(kind="constant", level=20),
        "seed": 3,
    }
    base.update(extra)
    return SimConfig(**base)  # type: ignore[arg-type]


def _images(out: Path) -> list[Path]:
    return sorted(out.rglob("*.jpg"))


async def test_chain_runs_then_reruns_from_cache_byte_for_byte(
    write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    async with running_sim(_config()) as sim:
        first = await run_recipe_async(recipe, _options(sim.base_url, tmp_path))
        assert first.exit_code == 0, first.message
        served = sim.stats()["generations"]
        assert served == 5  # hero, two closeups, poster, banner
        images = _images(tmp_path / "out")
        assert len(images) == 2 + 2 * 2 + 2 + 1
        for path in images:
            with Image.open(path) as im:
                im.load()
                assert im.format == "JPEG"
        with Image.open(tmp_path / "out" / "poster" / "default" / "0.jpg") as im:
            assert im.size == (768, 1408)  # imagen-4 portrait
        before = all_files(tmp_path / "out")

        second = await run_recipe_async(recipe, _options(sim.base_url, tmp_path))
        assert second.exit_code == 0
        assert sim.stats()["generations"] == served  # not one request more
        assert second.summary["api_calls"] == 0
        assert second.summary["cached"] == 5
        after = all_files(tmp_path / "out")
        del before["run.json"], after["run.json"]  # run.json records this run's timings
        assert after == before  # images and manifest.json byte for byte


async def test_editing_upstream_prompt_reruns_exactly_its_descendants(
    write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    async with running_sim(_config()) as sim:
        assert (await run_recipe_async(recipe, _options(sim.base_url, tmp_path))).exit_code == 0
        recipe.write_text(recipe.read_text().replace("{{ angle }} view", "{{ angle }} angle"))
        result = await run_recipe_async(recipe, _options(sim.base_url, tmp_path))
    assert result.exit_code == 0
    cached = {nid for nid, n in result.run_info["nodes"].items() if n["cache_hit"]}
    made = set(result.run_info["nodes"]) - cached
    assert cached == {"hero"}
    assert made == {"closeup[angle=front]", "closeup[angle=side]", "poster", "banner"}


async def test_editing_a_leaf_reruns_only_the_leaf(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    async with running_sim(_config()) as sim:
        await run_recipe_async(recipe, _options(sim.base_url, tmp_path))
        recipe.write_text(recipe.read_text().replace("web banner", "wide web banner"))
        result = await run_recipe_async(recipe, _options(sim.base_url, tmp_path))
        assert sim.stats()["generations"] == 6
    assert result.summary["api_calls"] == 1
    assert not result.run_info["nodes"]["banner"]["cache_hit"]


async def test_refresh_step_remakes_it_and_children_only_if_bytes_change(
    write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    async with running_sim(_config()) as sim:
        await run_recipe_async(recipe, _options(sim.base_url, tmp_path))
        result = await run_recipe_async(
            recipe, _options(sim.base_url, tmp_path, refresh_steps=frozenset({"hero"}))
        )
    # the simulator is deterministic: hero's bytes are unchanged, so nothing below re-runs
    assert result.summary["api_calls"] == 1
    assert not result.run_info["nodes"]["hero"]["cache_hit"]
    assert result.run_info["nodes"]["poster"]["cache_hit"]


async def test_faults_every_node_ends_done_or_failed_with_a_reason(
    write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: faults
        defaults: {model: imagen-4, count: 1}
        steps:
          shot:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}
            prompt: "product shot number {{ n }}"
          detail:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
            context: ["shot[n={{ n }}].0"]
            prompt: "detail of shot {{ n }}"
        """
    )
    config = _config(
        capacity=CapacitySpec(kind="constant", level=3),
        moderation_rate=0.05,
        fault_rate=0.05,
        reject_status="mixed",
    )
    async with running_sim(config) as sim:
        result = await run_recipe_async(
            recipe, _options(sim.base_url, tmp_path, fixed_concurrency=8)
        )
        stats = sim.stats()
    rejected = stats["images_statuses"].get("429", 0) + stats["images_statuses"].get("503", 0)
    assert rejected / stats["images_requests"] >= 0.3  # the load really was hostile
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["nodes"]) == 30
    for node in manifest["nodes"]:
        assert node["status"] in ("done", "failed", "skipped"), node
        if node["status"] != "done":
            assert node["error"]["type"] and node["error"]["message"], node
    for path in _images(tmp_path / "out"):
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            im.load()  # raises on a truncated or partial JPEG
    assert not list((tmp_path / "out").rglob("*.tmp"))
    assert result.exit_code in (0, 1)


@pytest.mark.parametrize(
    ("config_extra", "options_extra", "expect"),
    [
        pytest.param({"tokens": ("other-token",)}, {}, "Unauthorized", id="401-bad-token"),
        pytest.param({"credits": 2}, {}, "subscription", id="402-credits"),
        pytest.param(
            {"broken_accounts": ("sim@example.com",)},
            {"accounts": ("sim@example.com",)},
            "refresh",
            id="596-session",
        ),
        pytest.param(
            {"broken_accounts": ("sim@example.com",)}, {}, "refresh", id="596-unhealthy"
        ),
    ],
)
async def test_stops_exit_3_and_token_never_written(
    write_recipe, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys,
    config_extra: dict[str, object], options_extra: dict[str, object], expect: str,
) -> None:
    recipe = write_recipe(CHAIN)
    caplog.set_level(logging.DEBUG)
    async with running_sim(_config(**config_extra)) as sim:
        result = await run_recipe_async(
            recipe, _options(sim.base_url, tmp_path, report=True, **options_extra)
        )
    assert result.exit_code == 3
    assert result.outcome == "stopped"
    assert expect.lower() in (result.message or "").lower()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert all(n["status"] in ("done", "skipped", "failed") for n in manifest["nodes"])
    captured = capsys.readouterr()
    haystacks = [caplog.text, captured.out, captured.err]
    for folder in (tmp_path / "out", tmp_path / "cache", recipe.parent):
        haystacks += [p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()]
    assert not any(TOKEN in text for text in haystacks)


async def test_402_keeps_what_finished(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    async with running_sim(_config(credits=1)) as sim:
        result = await run_recipe_async(recipe, _options(sim.base_url, tmp_path))
    assert result.exit_code == 3
    assert (tmp_path / "out" / "hero" / "default" / "0.jpg").exists()
    lock = json.loads((recipe.parent / "recipe.lock.json").read_text())
    assert list(lock["nodes"]) == ["hero"]


async def test_unknown_account_is_dropped_and_others_finish(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    config = _config(accounts=("a@example.com", "b@example.com"))
    async with running_sim(config) as sim:
        result = await run_recipe_async(
            recipe,
            _options(sim.base_url, tmp_path, accounts=("ghost@example.com", "b@example.com")),
        )
        stats = sim.stats()
    assert result.exit_code == 0, result.message
    assert stats["statuses"].get("404", 0) >= 1
    used = {n["account"] for n in result.run_info["nodes"].values() if n["account"]}
    assert "b@example.com" in used


async def test_references_cross_accounts_by_upload(write_recipe, tmp_path: Path) -> None:
    """Nodes spread over two accounts: a reference made on one is uploaded to the other."""
    recipe = write_recipe(
        """
        version: 1
        name: spread
        defaults: {count: 1, model: imagen-4}
        steps:
          base:
            prompt: "a base image"
          uses:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
            context: [base.0]
            prompt: "variation {{ n }}"
        """
    )
    config = _config(accounts=("a@example.com", "b@example.com"))
    async with running_sim(config) as sim:
        result = await run_recipe_async(
            recipe, _options(sim.base_url, tmp_path, accounts=("a@example.com", "b@example.com"))
        )
        stats = sim.stats()
    assert result.exit_code == 0, result.message
    assert stats["statuses"].get("403", 0) == 0  # never sent another account's id
    used = {n["account"] for n in result.run_info["nodes"].values() if n["account"]}
    assert used == {"a@example.com", "b@example.com"}  # 8 ready nodes > one window of 3
    assert result.summary["uploads"] >= 1


async def test_an_asset_shared_by_parallel_nodes_is_uploaded_once(
    write_recipe, tmp_path: Path
) -> None:
    logo = tmp_path / "recipes" / "logo.png"
    logo.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (10, 120, 200)).save(logo, "PNG")
    recipe = write_recipe(
        """
        version: 1
        name: shared-asset
        defaults: {count: 1, model: imagen-4}
        assets: {logo: logo.png}
        steps:
          badge:
            matrix: {n: [1, 2, 3, 4, 5, 6]}
            context: [assets.logo]
            prompt: "badge {{ n }} with the logo"
        """
    )
    async with running_sim(_config()) as sim:
        result = await run_recipe_async(recipe, _options(sim.base_url, tmp_path))
        assert sim.stats()["uploads"] == 1
    assert result.exit_code == 0
    assert result.summary["uploads"] == 1
