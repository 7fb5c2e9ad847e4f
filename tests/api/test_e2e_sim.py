"""End to end on loopback: the real aiohttp path against the simulator.

Every status on the API page is produced by the simulator under a setting and raised
by the client as its named exception; a 200 gives real JPEGs at the native sizes;
an uploaded asset works as a reference. Latency is shrunk by a tiny time scale.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image

from flowpipe.api import FlowClient, ImageRequest, Timeouts
from flowpipe.errors import (
    AccountNotFoundError,
    APIError,
    AuthError,
    CapacityError,
    ForbiddenReferenceError,
    InvalidRequestError,
    ModerationError,
    PaymentRequiredError,
    SessionError,
    TransportError,
)
from flowpipe.sim import NATIVE_SIZES, CapacitySpec, RunningSim, SimConfig, running_sim

from .builders import make_jpeg, make_png

TOKEN = "e2e-sim-token-0123456789"
ALICE, BOB, BROKEN = "alice@example.com", "bob@example.com", "broken@example.com"

BASE_CONFIG = SimConfig(
    tokens=(TOKEN,),
    accounts=(ALICE, BOB),
    broken_accounts=(BROKEN,),
    time_scale=0.001,  # 10-20 API seconds become 10-20 ms
    capacity=CapacitySpec(kind="constant", level=20),
    seed=7,
)


@asynccontextmanager
async def sim_client(
    token: str = TOKEN, timeouts: Timeouts | None = None, **overrides: Any
) -> AsyncIterator[tuple[FlowClient, RunningSim]]:
    """A simulator with ``overrides`` on loopback and a real client pointed at it."""
    async with (
        running_sim(replace(BASE_CONFIG, **overrides)) as sim,
        FlowClient(base_url=sim.base_url, token=token, timeouts=timeouts or Timeouts()) as client,
    ):
        yield client, sim


def jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        image.load()  # decodes fully: a truncated file would raise here
        return image.size


# -- 200 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "aspect"), sorted(NATIVE_SIZES), ids=str)
async def test_generate_returns_decodable_jpegs_of_native_size(model: str, aspect: str) -> None:
    async with sim_client() as (client, sim):
        result = await client.generate(
            ImageRequest(
                "a lighthouse at dawn",
                model=model,
                aspect_ratio=aspect,
                count=2,
                seed=41,
                email=ALICE,
            )
        )
    assert len(result.images) == 2
    assert [image.seed for image in result.images] == [41, 41]  # the sim reports the request seed
    for image in result.images:
        assert jpeg_size(image.data) == NATIVE_SIZES[(model, aspect)]
        assert image.media_generation_id.startswith("user:")
        assert image.aspect_ratio == f"IMAGE_ASPECT_RATIO_{aspect.upper()}"
    assert result.images[0].data != result.images[1].data
    assert sim.stats()["statuses"] == {"200": 1}


async def test_equal_requests_give_equal_bytes() -> None:
    request = ImageRequest("same", model="imagen-4", count=1, seed=5, email=ALICE)
    async with sim_client() as (client, _):
        first = await client.generate(request)
        second = await client.generate(request)
    assert first.images[0].data == second.images[0].data


@pytest.mark.parametrize(
    ("data", "content_type", "size"),
    [
        pytest.param(make_png(32, 16), "image/png", (32, 16), id="png"),
        pytest.param(make_jpeg(20, 30), "image/jpeg", (20, 30), id="jpeg"),
    ],
)
async def test_upload_then_use_as_reference(
    data: bytes, content_type: str, size: tuple[int, int]
) -> None:
    async with sim_client() as (client, _):
        asset = await client.upload_asset(ALICE, data, content_type)
        assert (asset.width, asset.height) == size
        context = await client.generate(
            ImageRequest(
                "the logo on a mug",
                model="nano-banana",
                count=1,
                email=ALICE,
                context_references=(asset.media_generation_id,),
            )
        )
        style = await client.generate(
            ImageRequest(
                "a poster", model="imagen-4", count=1, style_reference=asset.media_generation_id
            )
        )
    assert jpeg_size(context.images[0].data) == NATIVE_SIZES[("nano-banana", "landscape")]
    assert style.images[0].model_name_type == "R2I"
    inputs = context.raw["imagePanels"][0]["generatedImages"][0]["requestData"]
    assert inputs["imageGenerationRequestData"]["imageGenerationImageInputs"] == [
        {"mediaGenerationId": asset.media_generation_id}
    ]


async def test_generated_image_can_feed_a_later_request() -> None:
    async with sim_client() as (client, _):
        hero = await client.generate(ImageRequest("hero", model="imagen-4", count=1, email=BOB))
        poster = await client.generate(
            ImageRequest(
                "poster",
                model="nano-banana",
                count=1,
                email=BOB,
                context_references=(hero.images[0].media_generation_id,),
            )
        )
    assert len(poster.images) == 1


async def test_accounts_and_account_health() -> None:
    async with sim_client() as (client, _):
        accounts = await client.accounts()
        alice = await client.account(ALICE)
        broken = await client.account(BROKEN)
    assert sorted(accounts) == sorted([ALICE, BOB, BROKEN])
    assert accounts[ALICE].ok and alice.ok
    assert not accounts[BROKEN].ok and not broken.ok
    assert broken.health == "Failed to refresh session."


# -- every error status on the page ------------------------------------------------------

Call = Callable[[FlowClient], Awaitable[object]]


def gen(prompt: str = "a quiet harbour", **fields: Any) -> Call:
    fields.setdefault("email", ALICE)
    fields.setdefault("count", 1)
    return lambda client: client.generate(ImageRequest(prompt, **fields))


ERROR_CASES: list[Any] = [
    pytest.param(
        {},
        gen(model="imagen-4", context_references=("a", "b", "c", "d")),
        InvalidRequestError,
        400,
        "Model imagen-4 supports maximum 3 context references",
        id="400-too-many-context-references",
    ),
    pytest.param(
        {},
        lambda c: c.upload_asset(ALICE, b"\x89PNG\r\n\x1a\n" + b"not really", "image/png"),
        InvalidRequestError,
        400,
        "File is not a valid image",
        id="400-upload-not-an-image",
    ),
    pytest.param(
        {},
        gen("a forbidden thing", model="imagen-4"),
        ModerationError,
        400,
        "PUBLIC_ERROR_UNSAFE_GENERATION",
        id="400-unsafe-generation",
    ),
    pytest.param(
        {},
        gen("a forbidden thing", model="nano-banana"),
        ModerationError,
        500,
        "Internal error encountered.",
        id="500-moderated",
    ),
    pytest.param(
        {"nano_500_rate": 1.0},
        gen(model="nano-banana"),
        ModerationError,
        500,
        "Internal error encountered.",
        id="500-nano-banana-plain-prompt",
    ),
    pytest.param(
        {},
        lambda c: c.accounts(),
        AuthError,
        401,
        "Unauthorized",
        id="401-bad-token",
    ),
    pytest.param(
        {"credits": 0},
        gen(),
        PaymentRequiredError,
        402,
        "Account has no subscription or subscription expired",
        id="402-no-credits",
    ),
    pytest.param(
        {},
        gen(email="nobody@example.com"),
        AccountNotFoundError,
        404,
        "Google Flow account nobody@example.com not found",
        id="404-generate-unknown-account",
    ),
    pytest.param(
        {},
        lambda c: c.account("nobody@example.com"),
        AccountNotFoundError,
        404,
        "Google Flow account nobody@example.com not found",
        id="404-account-lookup",
    ),
    pytest.param(
        {},
        lambda c: c.upload_asset("nobody@example.com", make_png(), "image/png"),
        AccountNotFoundError,
        404,
        "Google Flow account nobody@example.com not found",
        id="404-upload-unknown-account",
    ),
    pytest.param(
        {},
        gen(email=BROKEN),
        SessionError,
        596,
        "Failed to refresh session.",
        id="596-broken-account",
    ),
    pytest.param(
        {},
        lambda c: c.upload_asset(BROKEN, make_png(), "image/png"),
        SessionError,
        596,
        "Failed to refresh session.",
        id="596-upload-broken-account",
    ),
]


@pytest.mark.parametrize(("overrides", "call", "expected", "status", "reason"), ERROR_CASES)
async def test_simulated_status_raises_named_error(
    overrides: dict[str, Any], call: Call, expected: type[APIError], status: int, reason: str
) -> None:
    token = "wrong-token-for-the-sim" if status == 401 else TOKEN
    async with sim_client(token=token, **overrides) as (client, sim):
        with pytest.raises(expected) as caught:
            await call(client)
        assert sim.stats()["statuses"] == {str(status): 1}
    error = caught.value
    assert (error.status, error.reason) == (status, reason)
    assert error.hint and error.request
    assert TOKEN not in str(error)


async def test_403_reference_from_another_account() -> None:
    async with sim_client() as (client, sim):
        asset = await client.upload_asset(ALICE, make_png(), "image/png")
        with pytest.raises(ForbiddenReferenceError) as caught:
            await client.generate(
                ImageRequest(
                    "x",
                    model="nano-banana",
                    count=1,
                    email=BOB,
                    context_references=(asset.media_generation_id,),
                )
            )
        assert sim.stats()["statuses"] == {"200": 1, "403": 1}
    assert caught.value.status == 403
    assert caught.value.reason is not None
    assert caught.value.reason.startswith("Unauthorized access to user:")
    assert caught.value.reason.endswith(asset.media_generation_id)


@pytest.mark.parametrize("reject", ["429", "503"])
async def test_capacity_rejection(reject: str) -> None:
    # Capacity 1 and a held slot: the second request is turned away at once.
    overrides: dict[str, Any] = {
        "capacity": CapacitySpec(kind="constant", level=1),
        "reject_status": reject,
        "time_scale": 0.02,
        "latency_min": 10.0,
        "latency_max": 10.0,
    }
    async with sim_client(**overrides) as (client, sim):
        first = asyncio.create_task(client.generate(ImageRequest("one", count=1, email=ALICE)))
        while sim.stats()["in_flight"] == 0:
            await asyncio.sleep(0.005)
        with pytest.raises(CapacityError) as caught:
            await client.generate(ImageRequest("two", count=1, email=BOB))
        assert len((await first).images) == 1
        assert sim.stats()["statuses"] == {"200": 1, reject: 1}
    expected = {"429": "PUBLIC_ERROR_USER_REQUESTS_THROTTLED", "503": "SERVICE_UNAVAILABLE"}
    assert (caught.value.status, caught.value.reason) == (int(reject), expected[reject])


# -- faults that leave no HTTP answer ----------------------------------------------------


async def test_injected_faults_are_transport_errors() -> None:
    async with sim_client(fault_rate=1.0) as (client, sim):
        for n in range(8):
            with pytest.raises(TransportError):
                await client.generate(ImageRequest(f"prompt {n}", count=1, email=ALICE))
        faults = sim.stats()["faults"]
    assert set(faults) == {"reset", "truncated"}, "both kinds of fault were exercised"
    assert sum(faults.values()) == 8


async def test_slow_generation_times_out() -> None:
    # 10 API s at scale 0.02 is 0.2 s; the client allows 0.05 s.
    async with sim_client(
        timeouts=Timeouts(generate=0.05), time_scale=0.02, latency_min=10.0, latency_max=10.0
    ) as (client, _):
        with pytest.raises(TransportError) as caught:
            await client.generate(ImageRequest("slow", count=1, email=ALICE))
    assert caught.value.reason == "timeout"
