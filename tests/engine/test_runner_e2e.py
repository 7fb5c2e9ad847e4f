"""flowpipe run against the simulator on loopback: images, cache, re-runs, refreshes.

Retries, limits, accounts and stops run on a virtual clock instead
(tests/engine/test_virtual_runs.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from flowpipe.engine import RunOptions, run_recipe_async
from flowpipe.report import thumbs
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
        "lock": True,
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


async def test_a_cached_rerun_into_a_new_folder_draws_no_thumbnail(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write_recipe(CHAIN)
    drawn: list[int] = []
    real = thumbs._draw
    monkeypatch.setattr(thumbs, "_draw", lambda data: drawn.append(1) or real(data))
    async with running_sim(_config()) as sim:
        first = await run_recipe_async(recipe, _options(sim.base_url, tmp_path, report=True))
        assert first.exit_code == 0 and len(drawn) == 9  # one per image
        new = tmp_path / "elsewhere"
        again = await run_recipe_async(
            recipe, _options(sim.base_url, tmp_path, report=True, out=new)
        )
    assert again.summary["cached"] == 5 and again.report == new / "report.html"
    assert len(drawn) == 9  # the new folder's report drew nothing
    html = again.report.read_text()
    shown = set(re.findall(r'src="(\.thumbs/[0-9a-f]{64}\.jpg)"', html))
    assert len(shown) == 9 and all((new / rel).is_file() for rel in shown)
    assert {p.name for p in (new / ".thumbs").iterdir()} == {rel[8:] for rel in shown}


async def test_an_embedded_simulator_given_a_config_keeps_its_ids_across_runs(
    write_recipe, tmp_path: Path
) -> None:
    """The second run sends hero's cached id back to the account that made it: a fresh
    embedded simulator that forgot it would refuse it (403) and the bytes go up again."""
    hero = "version: 1\nname: ids\nsteps:\n  hero:\n    prompt: a ridge\n    count: 1\n"
    more = "  more:\n    prompt: more of it\n    model: nano-banana\n    count: 1\n" \
        "    context: [hero.0]\n"
    options = {"backend": "sim", "base_url": None, "token": None,
               "sim": SimConfig(seed=3, time_scale=SCALE)}
    first = await run_recipe_async(write_recipe(hero), _options("", tmp_path, **options))
    assert first.ok, first.message
    second = await run_recipe_async(write_recipe(hero + more),
                                    _options("", tmp_path, **options))
    assert second.ok, second.message
    assert second.nodes["hero"].cache_hit
    assert (second.summary["uploads"], second.summary["reuploads"]) == (0, 0)
