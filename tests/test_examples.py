"""Every recipe in examples/ runs to exit 0 on the embedded simulator.

Each test copies the example (and examples/assets) into a temporary folder first,
because ``flowpipe run`` writes ``<stem>.lock.json`` beside the recipe and the tests
must never modify the repository.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowpipe.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RECIPES = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".picks.yaml"))
CI_EXAMPLE = EXAMPLES / "ci-smoke.yaml"
LOOKBOOK = EXAMPLES / "lookbook-2026.yaml"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache folder and no token or API URL, so runs use the embedded simulator."""
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def copy_example(recipe: Path, into: Path) -> Path:
    """Copy one recipe, its committed lock and picks (if any) and the shared assets."""
    folder = into / "examples"
    folder.mkdir()
    shutil.copy2(recipe, folder / recipe.name)
    for kept in (recipe.with_suffix(".lock.json"), recipe.with_suffix(".picks.yaml")):
        if kept.exists():
            shutil.copy2(kept, folder / kept.name)
    shutil.copytree(EXAMPLES / "assets", folder / "assets")
    return folder / recipe.name


def run(recipe: Path, out: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        cli, ["run", str(recipe), "-o", str(out), "--plain", "--no-report", *extra]
    )


def manifest_nodes(out: Path) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = json.loads((out / "manifest.json").read_text())["nodes"]
    return nodes


def test_there_are_examples_to_run() -> None:
    names = {recipe.stem for recipe in RECIPES}
    assert {"character-sheet", "storyboard", "style-matrix", "brand-kit", "ci-smoke"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_example_has_a_header_saying_how_to_run_it(recipe: Path) -> None:
    header = []
    for line in recipe.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    assert len(header) >= 3, f"{recipe.name}: no comment header"
    assert any(f"flowpipe run examples/{recipe.name}" in line for line in header)


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_example_runs_on_the_embedded_simulator(recipe: Path, isolated: Path) -> None:
    copy = copy_example(recipe, isolated)
    out = isolated / "out"
    result = run(copy, out)
    assert result.exit_code == 0, result.output
    assert "embedded simulator" in result.stderr
    nodes = manifest_nodes(out)
    assert nodes, f"{recipe.name}: no nodes in the manifest"
    for node in nodes:
        assert node["status"] == "done", node
        assert len(node["images"]) == node["request"].get("count", 1), node["id"]
        for image in node["images"]:
            assert (out / image["path"]).is_file(), f"{node['id']}: {image['path']} missing"
    assert copy.with_suffix(".lock.json").is_file()


def test_the_2026_example_validates_and_plans_with_what_it_promises() -> None:
    recipe = LOOKBOOK
    assert CliRunner().invoke(cli, ["validate", str(recipe)]).exit_code == 0
    result = CliRunner().invoke(cli, ["plan", str(recipe), "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["api"] == "2026-07"
    nodes = plan["nodes"]
    models = {n["model"] for n in nodes if n["kind"] == "generate"}
    assert models == {"nano-banana-2-lite", "nano-banana-2", "nano-banana-pro"}
    assert {n["aspectRatio"] for n in nodes} == {"16:9"}
    assert max(len(n["references"]) for n in nodes) == 6
    assert [n["resolution"] for n in nodes if n["kind"] == "upscale"] == ["4k"]


def test_the_review_example_waits_without_its_picks_and_uses_them_with(isolated: Path) -> None:
    copy = copy_example(EXAMPLES / "review-loop.yaml", isolated)
    picks = copy.with_suffix(".picks.yaml")
    committed = picks.read_text()
    picks.unlink()
    out = isolated / "out"
    waiting = run(copy, out)
    assert waiting.exit_code == 5, waiting.output
    assert "waiting for review: poster" in waiting.stderr
    assert f"flowpipe review {out}" in waiting.stderr
    picks.write_text(committed)  # the committed pick still names hero's image 2 exactly
    done = run(copy, out, "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)["summary"]
    assert summary["cached"] == 1 and summary["done"] == 3  # hero from the cache
    poster = next(n for n in manifest_nodes(out) if n["id"] == "poster")
    hero = next(n for n in manifest_nodes(out) if n["id"] == "hero")
    assert poster["references"][0]["sha256"] == hero["images"][2]["sha256"]


def test_brand_kit_uploads_the_logo_once(isolated: Path) -> None:
    copy = copy_example(EXAMPLES / "brand-kit.yaml", isolated)
    result = run(copy, isolated / "out", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["uploads"] == 1
    assert summary["api_calls"] == summary["nodes"]


def test_ci_example_frozen_rerun_matches_the_committed_lock_and_sends_nothing(
    isolated: Path,
) -> None:
    committed = json.loads(CI_EXAMPLE.with_suffix(".lock.json").read_text())
    copy = copy_example(CI_EXAMPLE, isolated)
    out = isolated / "out"
    miss = run(copy, out, "--frozen")  # an empty cache: exit 4, nothing sent
    assert miss.exit_code == 4, miss.output
    assert not out.exists()
    assert run(copy, out).exit_code == 0
    fresh = json.loads(copy.with_suffix(".lock.json").read_text())
    assert fresh == committed, "examples/ci-smoke.lock.json is stale: re-run the example"
    hit = run(copy, out, "--frozen", "--json")
    assert hit.exit_code == 0, hit.output
    summary = json.loads(hit.stdout)["summary"]
    assert summary["api_calls"] == 0
    assert summary["cached"] == summary["nodes"] == 2


def test_the_2026_example_twice_the_second_run_sends_nothing(isolated: Path) -> None:
    """Issue 12's must-show: on the embedded simulator (which speaks the recipe's 2026-07),
    the first run makes every node, PNG and upscale included; the second sends nothing.
    The lock it writes is the committed one, byte for byte."""
    committed = LOOKBOOK.with_suffix(".lock.json").read_text(encoding="utf-8")
    copy = copy_example(LOOKBOOK, isolated)
    out = isolated / "out"
    first = run(copy, out, "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)["summary"]
    assert summary["api_calls"] == summary["nodes"] == 8  # 6 looks, the board, the print
    assert summary["uploads"] == 1  # the brand mark; the six looks go by their ids
    nodes = {n["id"]: n for n in manifest_nodes(out)}
    assert nodes["print"]["references"][0]["role"] == "source"
    assert nodes["print"]["request"] == {
        "mediaGenerationId": f"sha256:{nodes['board']['images'][0]['sha256']}",
        "resolution": "4k",
    }
    suffixes = {Path(i["path"]).suffix for n in nodes.values() for i in n["images"]}
    assert suffixes == {".jpg", ".png"}  # the simulator sends some images as PNG
    assert copy.with_suffix(".lock.json").read_text(encoding="utf-8") == committed
    second = run(copy, out, "--json")
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)["summary"]
    assert again["api_calls"] == again["uploads"] == 0
    assert again["cached"] == again["nodes"] == 8
    frozen = run(copy, out, "--frozen")
    assert frozen.exit_code == 0, frozen.output
