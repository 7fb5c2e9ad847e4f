"""Helpers for the simulator tests: requests on a test client, sample images."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient
from PIL import Image

from flowpipe.sim import CapacitySpec
from flowpipe.sim.app import STATE

API = "/v1/google-flow"
AUTH = {"Authorization": "Bearer sim-token"}
FAST: dict[str, Any] = {
    "time_scale": 0.001,  # 10-20 API s of latency take 10-20 ms
    "capacity": CapacitySpec(kind="constant", level=20),
}

MakeSim = Callable[..., Awaitable[TestClient[Any, Any]]]


def stats(client: TestClient[Any, Any]) -> dict[str, Any]:
    """The simulator's stats, read from its state."""
    return dict(client.app[STATE].stats())


async def generate(client: TestClient[Any, Any], **body: Any) -> tuple[int, Any]:
    """POST /images; returns (status, decoded JSON)."""
    body.setdefault("prompt", "a lighthouse in fog")
    async with client.post(f"{API}/images", json=body, headers=AUTH) as response:
        return response.status, await response.json()


async def upload(
    client: TestClient[Any, Any], data: bytes, content_type: str, email: str = "sim@example.com"
) -> tuple[int, Any]:
    """POST /assets/{email}; returns (status, decoded JSON)."""
    headers = {**AUTH, "Content-Type": content_type}
    async with client.post(f"{API}/assets/{email}", data=data, headers=headers) as response:
        return response.status, await response.json()


async def hold_slots(client: TestClient[Any, Any], n: int, **body: Any) -> list[asyncio.Task[Any]]:
    """Start ``n`` generations and return once all of them hold a capacity slot."""
    tasks = [asyncio.create_task(generate(client, seed=i, **body)) for i in range(n)]
    for _ in range(5000):  # a bound, so a broken simulator fails instead of hanging
        if stats(client)["in_flight"] >= n:
            return tasks
        await asyncio.sleep(0.002)
    raise AssertionError(f"{n} generations never held a slot: {stats(client)}")


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small PNG or JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, fmt)
    return buffer.getvalue()


def decoded(body: Any, index: int = 0) -> bytes:
    """The JPEG bytes of image ``index`` in a 200 body."""
    return base64.b64decode(body["imagePanels"][0]["generatedImages"][index]["encodedImage"])


def media_id(body: Any, index: int = 0) -> str:
    """The mediaGenerationId of image ``index`` in a 200 body."""
    return str(
        body["imagePanels"][0]["generatedImages"][index]["mediaGenerationId"]["mediaGenerationId"]
    )


# The API page's bodies, copied from it (not from flowpipe.sim.bodies) so a typo there fails.
PAGE_UNSAFE_400 = {
    "error": {
        "code": 400,
        "message": "Request contains an invalid argument.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "PUBLIC_ERROR_UNSAFE_GENERATION",
            }
        ],
    }
}
PAGE_401 = {"error": "Unauthorized"}
PAGE_402 = {"error": "Account has no subscription or subscription expired"}
PAGE_429 = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "PUBLIC_ERROR_USER_REQUESTS_THROTTLED",
            }
        ],
    }
}
PAGE_500 = {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}
PAGE_503 = {
    "error": {
        "code": 503,
        "message": "Service temporarily unavailable.",
        "status": "UNAVAILABLE",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_UNAVAILABLE"}
        ],
    }
}
PAGE_596 = {"error": "Failed to refresh session."}
