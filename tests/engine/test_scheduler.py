"""Scheduler edge cases through a mock transport: no socket, exact timings under control."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path

from PIL import Image

from flowpipe.api import FlowClient, HTTPRequest, HTTPResponse, MockTransport
from flowpipe.engine.accounts import AccountPool
from flowpipe.engine.limiter import LimiterConfig
from flowpipe.engine.scheduler import Scheduler, SchedulerOptions
from flowpipe.planner import build_plan
from flowpipe.store import MemoryCache, OutputWriter, ResponseCache

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


def _scheduler(tmp_path: Path, **options: object) -> Scheduler:
    recipe = tmp_path / "mock.yaml"
    recipe.write_text(RECIPE)
    return Scheduler(
        build_plan(recipe, backend="sim"),
        cache=ResponseCache(MemoryCache()),
        writer=OutputWriter(tmp_path / "out"),
        options=SchedulerOptions(time_scale=0.01, seed=0, **options),  # type: ignore[arg-type]
    )


def _client(handler) -> FlowClient:
    return FlowClient(
        base_url="http://127.0.0.1:9/v1/google-flow",
        token="mock-token-123456",
        transport=MockTransport(handler),
    )


async def test_run_ends_when_the_last_account_is_dropped_mid_flight(tmp_path: Path) -> None:
    """a: 404 drops the only account; b, still in flight, then gets a 429 and must not hang."""

    async def handler(request: HTTPRequest) -> HTTPResponse:
        prompt = json.loads(request.body)["prompt"]
        if prompt == "node a":
            await asyncio.sleep(0.05)
            return _error(404, "Google Flow account a@x not found")
        await asyncio.sleep(0.1)
        return _error(429, "too many")

    sched = _scheduler(tmp_path)
    pool = AccountPool(["a@x"], limiter_config=LimiterConfig(time_scale=0.01))
    results = await asyncio.wait_for(sched.run(_client(handler), pool), timeout=30)
    assert results["a"].status == "failed"
    assert results["a"].error is not None and results["a"].error.status == 404
    assert results["b"].status == "skipped"


async def test_a_stop_waits_at_most_stop_grace_for_requests_in_flight(tmp_path: Path) -> None:
    gate = asyncio.Event()  # never set: the request would hang without the grace limit

    async def handler(request: HTTPRequest) -> HTTPResponse:
        await gate.wait()
        return _ok()

    sched = _scheduler(tmp_path, stop_grace=0.2)
    pool = AccountPool(["a@x"], limiter_config=LimiterConfig(time_scale=0.01))
    task = asyncio.ensure_future(sched.run(_client(handler), pool))
    while sched.api_calls < 2:
        await asyncio.sleep(0.01)
    sched.request_stop("test stop")
    results = await asyncio.wait_for(task, timeout=30)  # returns after ~0.2 s, not never
    assert {r.status for r in results.values()} == {"skipped"}
    assert all("in flight" in (r.error.message if r.error else "") for r in results.values())


async def test_get_accounts_is_retried_on_capacity_answers(tmp_path: Path) -> None:
    from flowpipe.engine.runner import RunOptions, _resolve_accounts

    answers = [_error(429, "busy"), _error(503, "busy"),
               HTTPResponse(200, {}, json.dumps({"a@x": {"health": "OK"}}).encode())]

    def handler(request: HTTPRequest) -> HTTPResponse:
        return answers.pop(0)

    plan = _scheduler(tmp_path).plan
    accounts = await _resolve_accounts(RunOptions(), plan, _client(handler), 0.001)
    assert accounts == ["a@x"]
    assert answers == []
