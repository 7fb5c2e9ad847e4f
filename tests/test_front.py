"""The front door: flowpipe.load / plan / run / run_async, typed results, progress."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import flowpipe
from flowpipe.events import Event, NodeCached, NodeDone, RunStarted

FAST = {"time_scale": 0.001}  # the embedded simulator: 10-20 API s become 10-20 ms

RECIPE = """
version: 1
name: front
defaults: {model: imagen-4, aspectRatio: square, count: 2}
steps:
  hero:
    prompt: "a lighthouse at dusk"
  detail:
    matrix: {side: [left, right]}
    prompt: "the {{ side }} side of the lighthouse"
    context: [hero.0]
    count: 1
  bad:
    prompt: "a forbidden lighthouse"
    fallback_model: none
    count: 1
  after:
    context: [bad.0]
    prompt: "what follows the bad one"
    count: 1
"""


@pytest.fixture
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    path = tmp_path / "recipes" / "front.yaml"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(RECIPE).lstrip(), encoding="utf-8")
    return path


def test_a_str_path_runs_and_only_what_was_asked_is_written(recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = flowpipe.run(str(recipe), out=str(out), **FAST)
    assert result.out == out
    assert (out / "manifest.json").exists() and (out / "run.json").exists()
    assert not (out / "report.html").exists()
    assert not recipe.with_name("front.lock.json").exists()
    flowpipe.run(recipe, out=out, lock=True, report=True, **FAST)
    assert (out / "report.html").exists()
    assert recipe.with_name("front.lock.json").exists()


def test_the_result_is_typed_and_in_plan_order(recipe: Path, tmp_path: Path) -> None:
    result = flowpipe.run(recipe, out=tmp_path / "out", **FAST)
    plan = flowpipe.plan(recipe)
    assert not result.ok and result.exit_code == 1 and result.outcome == "failed"
    assert list(result.nodes) == list(plan.nodes)
    hero = result.nodes["hero"]
    assert (hero.id, hero.step, hero.state, hero.cache_hit) == ("hero", "hero", "done", False)
    assert hero.key is not None and len(hero.key) == 64
    assert [p.name for p in hero.images] == ["0.jpg", "1.jpg"]
    assert result.nodes["detail[side=left]"].variant == {"side": "left"}
    bad, after = result.nodes["bad"], result.nodes["after"]
    assert bad.state == "failed" and bad.error is not None
    assert bad.error.type == "ModerationError" and bad.reason == bad.error.message
    assert after.state == "skipped" and after.reason == "upstream node 'bad' failed"
    assert after.images == () and after.key is None
    expected = [p for node in result.nodes.values() for p in node.images]
    assert list(result.images) == expected and len(expected) == 4
    assert all(path.is_file() for path in result.images)
    again = flowpipe.run(recipe, out=tmp_path / "out", **FAST)
    assert again.nodes["hero"].cache_hit and again.images == result.images


def test_progress_goes_to_a_function_or_an_object(recipe: Path, tmp_path: Path) -> None:
    seen: list[Event] = []

    class Sink:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def handle(self, event: Event) -> None:
            self.events.append(event)

    flowpipe.run(recipe, out=tmp_path / "out", progress=seen.append, **FAST)
    sink = Sink()
    flowpipe.run(recipe, out=tmp_path / "out", progress=sink, **FAST)
    assert isinstance(seen[0], RunStarted) and isinstance(sink.events[0], RunStarted)
    assert {e.node for e in seen if isinstance(e, NodeDone)} == {
        "hero", "detail[side=left]", "detail[side=right]"}
    assert {e.node for e in sink.events if isinstance(e, NodeCached)} == {
        "hero", "detail[side=left]", "detail[side=right]"}


def test_bad_progress_and_unknown_options_are_usage_errors(recipe: Path, tmp_path: Path) -> None:
    with pytest.raises(flowpipe.UsageError, match="progress must be"):
        flowpipe.run(recipe, out=tmp_path / "out", progress=42)
    with pytest.raises(flowpipe.UsageError, match="unknown run option 'refesh_all'") as caught:
        flowpipe.run(recipe, out=tmp_path / "out", refesh_all=True)
    assert "refresh_all" in str(caught.value)  # the hint lists the real options
    assert not (tmp_path / "out").exists()


def test_run_inside_a_running_loop_names_run_async(recipe: Path, tmp_path: Path) -> None:
    async def main() -> None:
        flowpipe.run(recipe, out=tmp_path / "out")

    with pytest.raises(flowpipe.UsageError, match="run_async"):
        asyncio.run(main())
    assert not (tmp_path / "out").exists()


def test_run_async_gives_the_same_result(recipe: Path, tmp_path: Path) -> None:
    first = flowpipe.run(recipe, out=tmp_path / "a", **FAST)
    second = asyncio.run(flowpipe.run_async(recipe, out=tmp_path / "b", **FAST))
    assert [(n.id, n.state, n.key) for n in first.nodes.values()] == [
        (n.id, n.state, n.key) for n in second.nodes.values()]
    assert second.nodes["hero"].cache_hit  # the same cache folder: nothing sent twice


def test_load_then_plan_plans_what_was_loaded(recipe: Path) -> None:
    loaded = flowpipe.load(recipe)
    assert loaded.name == "front" and loaded.path == recipe
    recipe.write_text(recipe.read_text().replace("lighthouse at dusk", "mill at dawn"))
    assert "lighthouse" in flowpipe.plan(loaded).nodes["hero"].prompt
    assert "mill" in flowpipe.plan(str(recipe)).nodes["hero"].prompt
    boot = flowpipe.plan(loaded, variables={}, backend="useapi")
    assert boot.backend == "useapi"


def test_import_flowpipe_loads_neither_planner_nor_engine() -> None:
    code = ("import sys, flowpipe; print(sorted(m for m in sys.modules "
            "if m.startswith(('flowpipe.engine', 'flowpipe.planner', 'flowpipe.sim'))))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert shown == "[]"
    assert flowpipe.Plan.__name__ == "Plan" and flowpipe.Recipe.__name__ == "Recipe"
