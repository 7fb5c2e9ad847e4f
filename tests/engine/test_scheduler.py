"""Coordinator edge cases on a virtual clock over a mock transport: no socket, no real sleep."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
from pathlib import Path

from PIL import Image

from flowpipe.api import FlowClient, HTTPRequest, HTTPResponse, MockTransport
from flowpipe.engine.accounts import AccountPool, find_accounts
from flowpipe.engine.clock import RunClock, VirtualClock
from flowpipe.engine.retry import RetryPolicy
from flowpipe.engine.scheduler import Scheduler, SchedulerOptions
from flowpipe.planner import build_plan
from flowpipe.store import MemoryCache, ResponseCache

RECIPE = """
version: 1
name: mock
defaults: {model: imagen-4, count: 1, aspectRatio: square}
steps:
  a:
    prompt: "node a"
  b:
    prompt: "node b"
"""


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(buf, "JPEG")
    return buf.getvalue()


def _ok() -> HTTPResponse:
    image = {
        "encodedImage": base64.b64encode(_jpeg()).decode(),
        "seed": 1,
        "mediaGenerationId": {"mediaGenerationId": "user:1-email:61-image:1"},
        "prompt": "p",
        "modelNameType": "IMAGEN_3_5",
        "aspectRatio": "IMAGE_ASPECT_RATIO_SQUARE",
    }
    body = {"imagePanels": [{"prompt": "p", "generatedImages": [image]}]}
    return HTTPResponse(200, {"content-type": "application/json"}, json.dumps(body).encode())


def _error(status: int, text: str) -> HTTPResponse:
    return HTTPResponse(
        status, {"content-type": "application/json"}, json.dumps({"error": text}).encode()
    )


def _scheduler(tmp_path: Path, clock: RunClock, **options: object) -> Scheduler:
    recipe = tmp_path / "mock.yaml"
    recipe.write_text(RECIPE)
    return Scheduler(
        build_plan(recipe, backend="sim"),
        cache=ResponseCache(MemoryCache()),
        out=tmp_path / "out",
        clock=clock,
        options=SchedulerOptions(seed=0, **options),  # type: ignore[arg-type]
    )


def _client(handler) -> FlowClient:
    return FlowClient(
        base_url="http://127.0.0.1:9/v1/google-flow",
        token="mock-token-123456",
        transport=MockTransport(handler),
    )


def test_run_ends_when_the_last_account_is_dropped_mid_flight(tmp_path: Path) -> None:
    """a: 404 drops the only account; b, still in flight, then gets a 429 and must not hang."""
    virtual = VirtualClock()

    async def handler(request: HTTPRequest) -> HTTPResponse:
        prompt = json.loads(request.body)["prompt"]
        if prompt == "node a":
            await virtual.sleep(5.0)
            return _error(404, "Google Flow account a@x not found")
        await virtual.sleep(10.0)
        return _error(429, "too many")

    async def main():
        clock = RunClock(virtual)
        sched = _scheduler(tmp_path, clock)
        return await sched.run(_client(handler), AccountPool(["a@x"], clock=clock))

    results = virtual.run(main())
    assert results["a"].status == "failed"
    assert results["a"].error is not None and results["a"].error.status == 404
    assert results["b"].status == "skipped"


def test_a_stop_waits_at_most_stop_grace_for_requests_in_flight(tmp_path: Path) -> None:
    virtual = VirtualClock()
    gate = asyncio.Event()  # never set: the request would hang without the grace limit

    async def handler(request: HTTPRequest) -> HTTPResponse:
        await gate.wait()
        return _ok()

    async def main():
        clock = RunClock(virtual)
        sched = _scheduler(tmp_path, clock, stop_grace=30.0)
        task = asyncio.ensure_future(sched.run(_client(handler), AccountPool(["a@x"], clock=clock)))
        while sched.api_calls < 2:
            await virtual.sleep(0.01)
        sched.request_stop("test stop")
        results = await task  # returns after 30 virtual seconds of grace, not never
        return results, clock.now()

    results, ended = virtual.run(main())
    assert {r.status for r in results.values()} == {"skipped"}
    assert all("in flight" in (r.error.message if r.error else "") for r in results.values())
    assert 30.0 <= ended < 31.0  # the grace, on the run's (virtual) clock


def test_get_accounts_is_retried_on_capacity_answers(tmp_path: Path) -> None:
    virtual = VirtualClock()
    answers = [_error(429, "busy"), _error(503, "busy"),
               HTTPResponse(200, {}, json.dumps({"a@x": {"health": "OK"}}).encode())]

    def handler(request: HTTPRequest) -> HTTPResponse:
        return answers.pop(0)

    async def main() -> list[str]:
        return await find_accounts(_client(handler), chosen=(), policy=RetryPolicy(),
                                   clock=RunClock(virtual), rng=random.Random(0))

    accounts = virtual.run(main())
    assert accounts == ["a@x"]
    assert answers == []
    assert 10.0 <= virtual.time() <= 20.0  # two waits of U(5, 10) API seconds
