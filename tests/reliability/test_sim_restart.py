"""The simulator forgets every mediaGenerationId: references are re-uploaded from the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flowpipe.engine import run_recipe_async
from flowpipe.events import Event, NodeDone, NodeRetried
from flowpipe.sim import RunningSim, running_sim

from .conftest import CHAIN, CHAIN_NODES, assert_outputs_whole, run_options, sim_config


class ResetAfter:
    """An event sink that restarts the simulator's memory the moment a node is done."""

    def __init__(self, sim: RunningSim, node: str) -> None:
        self.sim = sim
        self.node = node
        self.forgotten = 0
        self.reuploads: list[str] = []

    def handle(self, event: Event) -> None:
        if isinstance(event, NodeDone) and event.node == self.node:
            self.forgotten += self.sim.reset()  # before any child of it is sent
        if isinstance(event, NodeRetried) and event.action == "re-upload":
            self.reuploads.append(event.node)


async def test_reset_mid_run_reuploads_references_and_completes(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    async with running_sim(sim_config()) as sim:
        sink = ResetAfter(sim, "hero")
        result = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path), sinks=[sink])
        stats = sim.stats()
    assert result.exit_code == 0, result.message
    assert sink.forgotten >= 2  # hero's two images were known, then forgotten
    # Both closeups and the poster held a hero id the simulator no longer knew: 403.
    assert stats["statuses"].get("403", 0) == 3
    assert sorted(sink.reuploads) == ["closeup[angle=front]", "closeup[angle=side]", "poster"]
    assert result.summary["uploads"] == stats["uploads"] >= 2  # hero.0 and hero.1 bytes
    assert stats["generations"] == CHAIN_NODES
    assert assert_outputs_whole(tmp_path / "out") == 2 * CHAIN_NODES


async def test_reset_between_runs_reuploads_cached_upstream_bytes(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    recipe = write_recipe(CHAIN)
    async with running_sim(sim_config()) as sim:
        first = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path))
        assert first.exit_code == 0, first.message
        assert sim.reset() >= 2 * CHAIN_NODES  # a restarted simulator: every id is unknown
        recipe.write_text(recipe.read_text().replace("poster featuring", "a poster showing"))
        before = dict(sim.stats())
        second = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path))
        after = sim.stats()
    assert second.exit_code == 0, second.message
    assert second.summary["cached"] == CHAIN_NODES - 1  # only the edited poster is sent
    assert after["generations"] - before["generations"] == 1
    # The poster's two references (hero.1, closeup[angle=side].1) came from cached bytes.
    assert after["uploads"] - before["uploads"] == second.summary["uploads"] == 2
    assert after["statuses"].get("403", 0) - before["statuses"].get("403", 0) == 1
    assert assert_outputs_whole(tmp_path / "out") == 2 * CHAIN_NODES
