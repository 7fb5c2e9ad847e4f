"""A remote cache during a run (review A-7): keys that become known while the run goes are
looked up on the remote's loop and awaited, never with a blocking call on the run's loop.

The bucket is a dict behind the ``Bucket`` methods the remote uses; the API is
``FakeAPI`` on a virtual clock. Not through ``conftest.virtual_run``: its deadline would
fire while the run awaits the remote's thread, which the virtual clock does not count
as work in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import flowpipe
from flowpipe.engine import runner
from flowpipe.engine.clock import VirtualClock
from flowpipe.engine.runner import RunControl, RunOptions, run_recipe_async
from flowpipe.engine.scheduler import Scheduler
from flowpipe.results import RunResult
from flowpipe.store.remote import RemoteCache
from flowpipe.store.s3 import Blob, RemoteSpec

from .fakeapi import BASE_URL, TOKEN, FakeAPI

CHAIN = """
version: 1
name: chain
defaults: {model: nano-banana, count: 1}
steps:
  s0:
    prompt: "the first"
  s1:
    prompt: "the second"
    context: [s0.0]
  s2:
    prompt: "the third"
    context: [s1.0]
"""


class MemoryBucket:
    """What ``RemoteCache`` asks of a bucket, in a dict."""

    def __init__(self) -> None:
        self.spec = RemoteSpec("bucket", "prefix")
        self.objects: dict[str, tuple[bytes, str]] = {}
        self._etags = itertools.count()

    def _keep(self, path: str, data: bytes) -> None:
        self.objects[path] = (data, f"e{next(self._etags)}")

    async def get(self, path: str) -> Blob | None:
        found = self.objects.get(path)
        return None if found is None else Blob(found[0], found[1], datetime.now(UTC))

    async def create(self, path: str, data: bytes) -> bool:
        if path in self.objects:
            return False
        self._keep(path, data)
        return True

    async def put(self, path: str, data: bytes) -> None:
        self._keep(path, data)

    async def replace(self, path: str, data: bytes, etag: str | None) -> bool:
        if path in self.objects and self.objects[path][1] != etag:
            return False
        self._keep(path, data)
        return True

    async def delete(self, path: str) -> None:
        self.objects.pop(path, None)

    async def names(self, prefix: str) -> set[str]:
        return {p for p in self.objects if p.startswith(prefix)}


def _run(recipe: Path, api: FakeAPI, tmp_path: Path, **options: Any) -> RunResult:
    return api.clock.run(flowpipe.run_async(
        recipe, out=tmp_path / "out", backend="sim", base_url=BASE_URL, token=TOKEN,
        time_scale=1.0, clock=api.clock, transport=api.transport(),
        cache_dir=tmp_path / "cache", use_remote=True, **options))


def _watch(monkeypatch: pytest.MonkeyPatch, bucket: MemoryBucket) -> list[str]:
    """Blocking remote calls made once the scheduler runs, by what they ran."""
    blocking: list[str] = []
    running = False
    run, call = Scheduler.run, RemoteCache.call

    async def watched_run(self: Scheduler, *args: Any) -> Any:
        nonlocal running
        running = True
        try:
            return await run(self, *args)
        finally:
            running = False

    def watched_call(self: RemoteCache, coro: Any) -> Any:
        if running:
            blocking.append(coro.__qualname__)
        return call(self, coro)

    monkeypatch.setattr(Scheduler, "run", watched_run)
    monkeypatch.setattr(RemoteCache, "call", watched_call)
    monkeypatch.setattr(runner, "open_remote",
                        lambda *a, **k: RemoteCache(bucket, pending=None))
    return blocking


def test_keys_known_during_a_run_are_looked_up_without_blocking_its_loop(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = MemoryBucket()
    blocking = _watch(monkeypatch, bucket)
    recipe = write_recipe(CHAIN)
    first = _run(recipe, FakeAPI(VirtualClock()), tmp_path / "a")
    assert first.ok, first.message
    assert sum(p.startswith("v1/gen/") for p in bucket.objects) == 3  # pushed
    # Another machine: an empty cache folder; s0 is made again, so s1's and s2's keys
    # are known only during the run, and both come from the remote.
    api = FakeAPI(VirtualClock())
    again = _run(recipe, api, tmp_path / "b", refresh_steps={"s0"})
    assert again.ok, again.message
    assert api.images_requests == 1
    assert [again.nodes[n].cache_hit for n in ("s0", "s1", "s2")] == [False, True, True]
    assert blocking == []


class HangingBucket(MemoryBucket):
    """A remote that never answers a read."""

    async def get(self, path: str) -> Blob | None:
        await asyncio.Event().wait()
        return None


def test_a_second_ctrl_c_ends_a_run_whose_remote_hangs_before_it_starts(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch pull before the run waits for a remote that does not answer: the second
    Ctrl-C cancels it and the run ends interrupted, outputs written (review A-5)."""
    monkeypatch.setattr(runner, "open_remote",
                        lambda *a, **k: RemoteCache(HangingBucket(), pending=None))
    api, control = FakeAPI(VirtualClock()), RunControl()

    async def presses() -> None:
        for _ in range(2):
            await api.clock.sleep(1.0)
            control.interrupt()

    async def main() -> RunResult:
        pressing = asyncio.ensure_future(presses())
        options = RunOptions(out=tmp_path / "out", backend="sim", base_url=BASE_URL,
                             token=TOKEN, time_scale=1.0, clock=api.clock,
                             transport=api.transport(), cache_dir=tmp_path / "cache",
                             use_remote=True)
        try:
            return await run_recipe_async(write_recipe(CHAIN), options, control=control)
        finally:
            pressing.cancel()

    result = api.clock.run(main())
    assert (result.outcome, result.exit_code) == ("interrupted", 130)
    assert api.requests == []
    assert json.loads((tmp_path / "out" / "run.json").read_text())["outcome"] == "interrupted"
