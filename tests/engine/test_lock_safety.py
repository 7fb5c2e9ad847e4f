"""The committed lock is safe: only a run of the recipe as committed rewrites it (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import flowpipe
from flowpipe.cli import cli

from .conftest import CHAIN


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    return CliRunner()


def _run(runner: CliRunner, recipe: Path, out: Path, *extra: str) -> Result:
    result = runner.invoke(cli, ["run", str(recipe), "-o", str(out), "--plain", "--no-report",
                                 *extra])
    assert result.exit_code == 0, result.output
    return result


def test_a_var_run_writes_its_lock_into_the_output_folder_and_says_so(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    out = tmp_path / "out"
    _run(runner, recipe, out)
    committed = recipe.with_name("recipe.lock.json")
    before = committed.read_bytes()
    result = _run(runner, recipe, tmp_path / "boot", "--var", "product=boot")
    assert committed.read_bytes() == before
    moved = tmp_path / "boot" / "recipe.lock.json"
    assert json.loads(moved.read_text())["nodes"]["hero"]["request"]["prompt"] == \
        "boot on a ridge at golden hour"
    assert (f"flowpipe: lock written to {moved}: the run sets variables, so recipe.lock.json "
            "beside the recipe is left as it is (--update-lock writes it there)") in result.stderr
    accepted = _run(runner, recipe, tmp_path / "boot", "--var", "product=boot", "--update-lock")
    assert committed.read_bytes() != before
    assert "lock written to" not in accepted.stderr
    assert json.loads(committed.read_text())["nodes"]["hero"]["request"]["prompt"].startswith(
        "boot")


def test_an_unchanged_rerun_leaves_the_lock_byte_for_byte(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    committed = recipe.with_name("recipe.lock.json")
    _run(runner, recipe, tmp_path / "out")
    data = json.loads(committed.read_text())  # written before issue 13: no requests, no api
    del data["api"]
    for entry in data["nodes"].values():
        del entry["request"]
    committed.write_text(json.dumps(data, indent=2))
    old = committed.read_bytes()
    _run(runner, recipe, tmp_path / "out")
    assert committed.read_bytes() == old


def test_reordered_steps_all_cached_leave_the_lock_byte_for_byte(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    """Step order changes no key: the committed lock keeps its old order, unrewritten."""
    swatch = "  swatch: {prompt: a glaze swatch, count: 1}\n"
    recipe = write_recipe(CHAIN.rstrip() + "\n" + swatch)
    committed = recipe.with_name("recipe.lock.json")
    _run(runner, recipe, tmp_path / "out")
    old = committed.read_bytes()
    assert list(json.loads(old)["nodes"])[-1] == "swatch"
    recipe.write_text(recipe.read_text().replace(swatch, "").replace("steps:\n",
                                                                      "steps:\n" + swatch))
    result = _run(runner, recipe, tmp_path / "out")
    assert "swatch" in result.output  # it ran (from the cache), first now
    assert committed.read_bytes() == old


def test_lock_names_the_file_outright(runner: CliRunner, write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    chosen = tmp_path / "locks" / "mine.lock.json"
    _run(runner, recipe, tmp_path / "out", "--var", "product=boot", "--lock", str(chosen))
    assert not recipe.with_name("recipe.lock.json").exists()
    assert set(json.loads(chosen.read_text())["nodes"]) >= {"hero", "poster"}


def test_the_python_front_door_follows_the_same_rule(write_recipe, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    recipe = write_recipe(CHAIN)
    cache = tmp_path / "cache"
    first = flowpipe.run(recipe, out=tmp_path / "out", lock=True, cache_dir=cache)
    committed = recipe.with_name("recipe.lock.json")
    assert first.lock == committed and first.lock_note is None
    before = committed.read_bytes()
    boot = flowpipe.run(recipe, out=tmp_path / "boot", lock=True, cache_dir=cache,
                        variables={"product": "boot"})
    assert committed.read_bytes() == before
    assert boot.lock == tmp_path / "boot" / "recipe.lock.json" and boot.lock.exists()
    assert boot.lock_note is not None and "variables" in boot.lock_note
    assert all(n.change == "changed" for n in boot.nodes.values())
    assert boot.nodes["hero"].why == ('prompt: "trail shoe on…" → "boot on…"',)


def test_a_frozen_run_with_variables_checks_the_lock_it_would_write(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    _run(runner, recipe, tmp_path / "boot", "--var", "product=boot")
    frozen = _run(runner, recipe, tmp_path / "boot", "--var", "product=boot", "--frozen",
                  "--json")
    assert json.loads(frozen.stdout)["summary"]["api_calls"] == 0
    lock = tmp_path / "boot" / "recipe.lock.json"
    data = json.loads(lock.read_text())
    data["nodes"]["hero"]["key"] = "0" * 64
    lock.write_text(json.dumps(data))
    stale = runner.invoke(cli, ["run", str(recipe), "-o", str(tmp_path / "boot"), "--plain",
                                "--no-report", "--var", "product=boot", "--frozen"])
    assert stale.exit_code == 4
    assert "changed since recipe.lock.json" in stale.stderr
