"""Re-runs on the embedded simulator are quiet; a real 403 is a re-upload, not a retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from flowpipe.cli import cli
from flowpipe.sim import SimConfig, SimThread

from .conftest import CHAIN

ASSET_CHAIN = CHAIN.replace("context: [hero.0]", "context: [hero.0, assets.logo]").replace(
    "vars: {product: trail shoe}", "vars: {product: trail shoe}\nassets: {logo: logo.png}")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    return CliRunner()


def _recipe(write_recipe, text: str) -> Path:
    recipe: Path = write_recipe(text)
    Image.new("RGB", (16, 16), (0, 90, 200)).save(recipe.parent / "logo.png")
    return recipe


def _run(runner: CliRunner, recipe: Path, out: Path, env: dict[str, str] | None = None
         ) -> tuple[Result, dict[str, int]]:
    result = runner.invoke(cli, ["run", str(recipe), "-o", str(out), "--plain", "--no-report",
                                 "--json"], env=env)
    assert result.exit_code == 0, result.output
    return result, json.loads(result.stdout)["summary"]


def test_a_rerun_on_the_embedded_simulator_sends_old_ids_without_a_403(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _, first = _run(runner, _recipe(write_recipe, ASSET_CHAIN), out)
    assert first["uploads"] == 1  # the logo, once
    edited = ASSET_CHAIN.replace("studio close-up", "close-up").replace("web banner", "banner")
    result, again = _run(runner, _recipe(write_recipe, edited), out)
    assert again["api_calls"] == 4  # both close-ups, the poster and the banner: made again
    assert "403" not in result.stderr and "re-upload" not in result.stderr
    assert (again["uploads"], again["reuploads"], again["retries"]) == (0, 0, 0)


def test_a_real_403_is_a_re_upload_not_a_retry(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with SimThread(SimConfig(tokens=("t0k3n-for-tests",), time_scale=0.001)) as sim:
        env = {"USEAPI_TOKEN": "t0k3n-for-tests", "FLOWPIPE_API_URL": sim.base_url}
        _run(runner, _recipe(write_recipe, CHAIN), out, env)
        sim.reset()  # the account forgets every id: the next reference is answered 403
        edited = CHAIN.replace("poster featuring", "poster showing")
        result, summary = _run(runner, _recipe(write_recipe, edited), out, env)
    assert "re-upload poster: HTTP 403" in result.stderr
    assert (summary["reuploads"], summary["retries"]) == (1, 0)
    assert summary["uploads"] >= 1
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["summary"]["reuploads"] == 1
