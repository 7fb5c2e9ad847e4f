"""Fixtures for running recipes: against a simulator on loopback, or on a virtual clock."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import flowpipe
from flowpipe.engine.clock import VirtualClock
from flowpipe.results import RunResult

from .fakeapi import BASE_URL, FakeAPI
from .fakeapi import TOKEN as FAKE_TOKEN

TOKEN = "e2e-secret-token-7f3a9c"  # a distinctive string, scanned for in every output
SCALE = 0.005  # 10-20 API seconds of latency become 50-100 ms


CHAIN = """
version: 1
name: chain
defaults: {model: imagen-4, aspectRatio: landscape, count: 2}
vars: {product: trail shoe}
steps:
  hero:
    prompt: "{{ product }} on a ridge at golden hour"
    seed: 1234
  closeup:
    matrix: {angle: [front, side]}
    prompt: "studio close-up of the {{ product }}, {{ angle }} view"
    model: nano-banana
    context: [hero.0]
  poster:
    style: hero.1
    context: ["closeup[angle=side].1"]
    prompt: "poster featuring the {{ product }}"
    aspectRatio: portrait
  banner:
    context: [poster.0]
    prompt: "web banner built from the poster"
    aspectRatio: landscape
    count: 1
"""


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(text: str, name: str = "recipe.yaml") -> Path:
        path = tmp_path / "recipes" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


def all_files(*folders: Path) -> dict[str, bytes]:
    """Every file under the folders, by relative path, for byte-for-byte comparison."""
    files: dict[str, bytes] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                files[str(path.relative_to(folder))] = path.read_bytes()
    return files


DEADLINE = 1e7  # virtual seconds (about 4 months of API time): no test run needs more


async def within(clock: VirtualClock, main: Coroutine[Any, Any, RunResult],
                 deadline: float = DEADLINE) -> RunResult:
    """``main``, or a failure (not a hung test) when it has not ended ``deadline`` virtual
    seconds on: a run that waits for nothing lets the clock jump straight there."""
    run = asyncio.ensure_future(main)
    guard = asyncio.ensure_future(clock.sleep(deadline))
    await asyncio.wait({run, guard}, return_when=asyncio.FIRST_COMPLETED)
    if run.done():
        guard.cancel()
        return run.result()
    run.cancel()
    raise AssertionError(f"the run did not end within {deadline:g} virtual seconds")


def virtual_run(recipe: Path, api: FakeAPI, tmp_path: Path, **options: Any) -> RunResult:
    """``flowpipe.run_async`` of ``recipe`` against ``api`` on its virtual clock; a run
    that hangs fails the test (``within``)."""
    settings: dict[str, Any] = {
        "backend": "sim",
        "base_url": BASE_URL,
        "token": FAKE_TOKEN,
        "time_scale": 1.0,
        "clock": api.clock,
        "transport": api.transport(),
        "cache_dir": tmp_path / "cache",
        "lock": True,
        "seed": 5,
    }
    settings.update(options)
    return api.clock.run(within(api.clock, flowpipe.run_async(recipe, out=tmp_path / "out",
                                                               **settings)))
