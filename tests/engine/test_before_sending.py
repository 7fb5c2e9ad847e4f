"""Runs that end before the first generation, on a virtual clock: Ctrl-C while looking
for accounts (review A-5) and ``GET /accounts`` failing (A-8). Either way the run ends
as a result, with run.json and a manifest, never as an exception.

``RunControl.interrupt`` is what the SIGINT handler of ``run_recipe`` calls; here a task
on the run's virtual clock calls it, so the tests need no signal and no real time.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from flowpipe.api import HTTPRequest, HTTPResponse
from flowpipe.engine.clock import VirtualClock
from flowpipe.engine.retry import RetryPolicy
from flowpipe.engine.runner import RunControl, RunOptions, run_recipe_async
from flowpipe.results import RunResult
from flowpipe.sim.bodies import REJECTED_503, account_not_found

from .conftest import within
from .fakeapi import BASE_URL, TOKEN, FakeAPI

RECIPE = """
version: 1
name: interrupted
steps:
  a:
    prompt: "a cat"
    count: 1
"""
HANG = 1e6  # API seconds a hung GET /accounts takes


class _Accounts(FakeAPI):
    """``GET /accounts`` answers 503 (``hang``: after ``HANG`` seconds) every time."""

    hang: bool = False
    looks: int = 0
    status: int = 503

    async def __call__(self, request: HTTPRequest) -> HTTPResponse:
        if request.url.endswith("/accounts"):
            self.looks += 1
            if self.hang:
                await self.clock.sleep(HANG)
            if self.status == 404:
                return self._answer("/accounts", 404, account_not_found("x@example.com"))
            return self._answer("/accounts", 503, REJECTED_503)
        return await super().__call__(request)


def _run(api: FakeAPI, recipe: Path, tmp_path: Path, at: tuple[float, ...]) -> RunResult:
    control = RunControl()

    async def interrupts() -> None:
        for t in at:
            await api.clock.sleep(t - api.clock.time())
            control.interrupt()

    async def main() -> RunResult:
        options = RunOptions(out=tmp_path / "out", backend="useapi", base_url=BASE_URL,
                             token=TOKEN, transport=api.transport(), clock=api.clock,
                             time_scale=1.0, cache_dir=tmp_path / "cache", use_remote=False)
        presses = asyncio.ensure_future(interrupts())  # beside the run, on its clock
        try:
            return await run_recipe_async(recipe, options, control=control)
        finally:
            presses.cancel()

    return api.clock.run(within(api.clock, main()))


def test_one_ctrl_c_stops_looking_for_accounts(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    api = _Accounts(VirtualClock())
    result = _run(api, recipe, tmp_path, at=(0.5,))
    assert api.looks == 1  # the look in the air ended; no retry followed
    assert (result.outcome, result.exit_code) == ("interrupted", 130)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["outcome"] == "interrupted"


def test_a_second_ctrl_c_ends_a_hung_look_for_accounts(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    api = _Accounts(VirtualClock())
    api.hang = True
    result = _run(api, recipe, tmp_path, at=(1.0, 2.0))
    assert api.clock.time() < HANG  # it did not wait for the answer
    assert (result.outcome, result.exit_code) == ("interrupted", 130)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["outcome"] == "interrupted"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [n["status"] for n in manifest["nodes"]] == ["skipped"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [pytest.param(503, "failed", id="503-every-time"), pytest.param(404, "failed", id="404")],
)
def test_a_failed_look_for_accounts_is_a_result_not_an_exception(
    tmp_path: Path, status: int, outcome: str
) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    api = _Accounts(VirtualClock())
    api.status = status
    result = _run(api, recipe, tmp_path, at=())
    assert (result.outcome, result.exit_code) == (outcome, 1)
    assert "GET /accounts" in (result.message or "")
    assert api.looks == (RetryPolicy().max_lookups if status == 503 else 1)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["outcome"] == outcome
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [n["status"] for n in manifest["nodes"]] == ["skipped"]
