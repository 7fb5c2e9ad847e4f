"""`flowpipe run` through the CLI: exit codes 0-4, the JSON summary, frozen mode."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowpipe.cli import cli
from flowpipe.sim import SimConfig, SimThread
from flowpipe.store.lock import LockEntry, read_lock, write_lock

from .conftest import CHAIN

MODERATED = """
version: 1
name: moderated
defaults: {count: 1}
steps:
  fine:
    prompt: "a calm lake"
  bad:
    prompt: "a forbidden thing"
    fallback_model: none
  after:
    context: [bad.0]
    prompt: "more of the same"
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    return CliRunner()


def _run(runner: CliRunner, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(cli, ["run", *args, "--plain", "--no-report"], env=env)


def test_exit_0_and_json_summary(runner: CliRunner, write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    result = _run(runner, str(recipe), "-o", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "done"
    assert summary["exit_code"] == 0
    assert summary["summary"]["done"] == 5
    assert "embedded simulator" in result.stderr


def test_exit_1_when_a_node_fails_and_its_children_are_skipped(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(MODERATED)
    result = _run(runner, str(recipe), "-o", str(tmp_path / "out"), "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "failed"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    status = {n["id"]: (n["status"], (n["error"] or {}).get("type")) for n in manifest["nodes"]}
    assert status == {
        "fine": ("done", None),
        "bad": ("failed", "ModerationError"),
        "after": ("skipped", "Skipped"),
    }


def test_exit_2_on_a_bad_recipe(runner: CliRunner, write_recipe) -> None:
    recipe = write_recipe("version: 1\nname: x\nsteps:\n  a:\n    prompt: '{{ nope }}'\n")
    result = _run(runner, str(recipe))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"{recipe}:" in result.stderr


def test_exit_3_on_a_bad_token(runner: CliRunner, write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    with SimThread(SimConfig(tokens=("right-token",), time_scale=0.001)) as sim:
        env = {"USEAPI_TOKEN": "wrong-token-abcdef", "FLOWPIPE_API_URL": sim.base_url}
        result = _run(runner, str(recipe), "-o", str(tmp_path / "out"), env=env)
    assert result.exit_code == 3, result.output
    assert "401" in result.stderr
    assert "USEAPI_TOKEN" in result.stderr or "token" in result.stderr.lower()
    assert "wrong-token-abcdef" not in result.output


def test_exit_4_frozen_miss_sends_nothing_then_passes_once_cached(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    out = str(tmp_path / "out")
    miss = _run(runner, str(recipe), "-o", out, "--frozen")
    assert miss.exit_code == 4, miss.output
    assert "not in the cache" in miss.stderr
    assert not (tmp_path / "out").exists()  # nothing was generated or written
    assert _run(runner, str(recipe), "-o", out).exit_code == 0
    hit = _run(runner, str(recipe), "-o", out, "--frozen", "--json")
    assert hit.exit_code == 0, hit.output
    assert json.loads(hit.stdout)["summary"]["api_calls"] == 0


def test_frozen_fails_when_lock_is_stale(runner: CliRunner, write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    out = str(tmp_path / "out")
    assert _run(runner, str(recipe), "-o", out).exit_code == 0
    lock = recipe.with_name("recipe.lock.json")
    locked = read_lock(lock)
    stale = LockEntry("0" * 64, locked.nodes["hero"].images)
    write_lock(lock, dataclasses.replace(locked, nodes={**locked.nodes, "hero": stale}))
    result = _run(runner, str(recipe), "-o", out, "--frozen")
    assert result.exit_code == 4
    assert "changed since recipe.lock.json" in result.stderr


def test_frozen_and_refresh_is_a_usage_error(runner: CliRunner, write_recipe) -> None:
    recipe = write_recipe(CHAIN)
    result = _run(runner, str(recipe), "--frozen", "--refresh")
    assert result.exit_code == 2
    assert "contradict" in result.stderr


def test_refresh_without_value_means_every_step(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    out = str(tmp_path / "out")
    assert _run(runner, str(recipe), "-o", out).exit_code == 0
    again = _run(runner, str(recipe), "-o", out, "--refresh", "--json")
    assert json.loads(again.stdout)["summary"]["api_calls"] == 5


def test_refresh_of_an_unknown_step_is_a_usage_error(runner: CliRunner, write_recipe) -> None:
    recipe = write_recipe(CHAIN)
    result = _run(runner, str(recipe), "--refresh", "postr")
    assert result.exit_code == 2
    assert "no step named postr" in result.stderr
    assert "poster" in result.stderr  # the hint lists the real steps


def test_frozen_needs_no_token_and_checks_the_locks_backend(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    out = str(tmp_path / "out")
    assert _run(runner, str(recipe), "-o", out).exit_code == 0
    lock = recipe.with_name("recipe.lock.json")
    assert json.loads(lock.read_text())["backend"] == "sim"
    explicit = _run(runner, str(recipe), "-o", out, "--frozen", "--backend", "useapi")
    assert explicit.exit_code == 4  # no token needed; useapi keys are simply not cached
    assert "not in the cache" in explicit.stderr
    assert _run(runner, str(recipe), "-o", out, "--frozen").exit_code == 0
    write_lock(lock, dataclasses.replace(read_lock(lock), backend="useapi"))
    from_lock = _run(runner, str(recipe), "-o", out, "--frozen")
    assert from_lock.exit_code == 4  # keys now computed for the real API: none cached


def test_a_stopped_run_keeps_the_rest_of_the_committed_lock(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    assert _run(runner, str(recipe), "-o", str(tmp_path / "out")).exit_code == 0
    lock = recipe.with_name("recipe.lock.json")
    before = json.loads(lock.read_text())
    with SimThread(SimConfig(tokens=("right-token",), time_scale=0.001)) as sim:
        env = {"USEAPI_TOKEN": "wrong-token-abcdef", "FLOWPIPE_API_URL": sim.base_url,
               "FLOWPIPE_CACHE_DIR": str(tmp_path / "other-cache")}
        stopped = _run(runner, str(recipe), "-o", str(tmp_path / "out2"), env=env)
    assert stopped.exit_code == 3
    assert json.loads(lock.read_text()) == before


def test_the_cli_names_the_flag_the_library_error_is_about(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    """The library speaks of run options (refresh_steps, frozen); the CLI of its flags."""
    recipe = write_recipe(CHAIN)
    refresh = _run(runner, str(recipe), "--refresh", "postr")
    assert "flowpipe: --refresh: no step named postr" in refresh.stderr
    frozen = _run(runner, str(recipe), "-o", str(tmp_path / "out"), "--frozen")
    assert "flowpipe: --frozen: node 'hero' is not in the cache" in frozen.stderr
