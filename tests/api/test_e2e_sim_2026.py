"""End to end on loopback in 2026-07: the real aiohttp client against ``flowpipe sim``.

Signed image URLs downloaded and expiring, PNG told from JPEG, upscales at their
sizes, every 429 reason raised as its own exception with its pause, refused captchas,
both upload answers, and references by id that need no upload.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from PIL import Image

from flowpipe.api import FetchPolicy, FlowClient, ImageRequest
from flowpipe.errors import (
    AccountPausedError,
    CapacityError,
    CaptchaError,
    ImageURLError,
    ModelQuotaError,
    NoEligibleAccountError,
)
from flowpipe.sim import CapacitySpec, RunningSim, SimConfig, running_sim

from .builders import make_png

TOKEN = "e2e-2026-token-0123456789"
ALICE, BOB = "alice@example.com", "bob@example.com"
NEW = "2026-07"


async def no_sleep(seconds: float) -> None:
    """Downloads retry without waiting in these tests."""


@asynccontextmanager
async def sim_client(**overrides: Any) -> AsyncIterator[tuple[FlowClient, RunningSim]]:
    config = SimConfig(**{
        "tokens": (TOKEN,), "accounts": (ALICE, BOB), "dialect": NEW, "time_scale": 0.001,
        "capacity": CapacitySpec(kind="constant", level=20), "seed": 7, **overrides,
    })
    async with (
        running_sim(config) as sim,
        FlowClient(base_url=sim.base_url, token=TOKEN, dialect=NEW,
                   fetch=FetchPolicy(attempts=2, delay=(0.0, 0.0)), sleep=no_sleep) as client,
    ):
        yield client, sim


def request(**kwargs: Any) -> ImageRequest:
    kwargs.setdefault("count", 1)
    return ImageRequest("a lighthouse at dawn", dialect=NEW, **kwargs)


def picture(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decodes fully: a cut file would raise
        return str(image.format), image.size


async def test_images_behind_signed_urls_are_downloaded_and_png_is_detected() -> None:
    async with sim_client(encoded_image_rate=0.0, png_rate=1.0) as (client, sim):
        result = await client.generate(request(model="nano-banana-2", aspect_ratio="9:16",
                                               count=3, email=ALICE))
        stats = sim.stats()
    assert [i.format for i in result.images] == ["png"] * 3
    assert [i.extension for i in result.images] == ["png"] * 3
    assert {picture(i.data) for i in result.images} == {("PNG", (768, 1376))}
    assert stats["fife"]["ok"] == 3


async def test_inline_jpegs_need_no_download() -> None:
    async with sim_client(encoded_image_rate=1.0, png_rate=0.0) as (client, sim):
        result = await client.generate(request(count=2, email=ALICE))
        stats = sim.stats()
    assert [i.format for i in result.images] == ["jpeg", "jpeg"]
    assert stats["fife"]["ok"] == 0


async def test_an_expired_url_is_an_image_url_error() -> None:
    async with sim_client(encoded_image_rate=0.0, fife_ttl=1e-6) as (client, sim):
        with pytest.raises(ImageURLError) as caught:
            await client.generate(request(email=ALICE))
        stats = sim.stats()
    assert caught.value.status == 403 and caught.value.retryable
    assert "Signature" not in str(caught.value)
    assert stats["fife"]["expired"] == 1 and stats["fife"]["ok"] == 0


@pytest.mark.parametrize(("resolution", "long_side"), [("2k", 2048), ("4k", 4096)])
async def test_upscale_of_a_generated_image(resolution: str, long_side: int) -> None:
    async with sim_client() as (client, sim):
        made = await client.generate(request(aspect_ratio="1:1", email=BOB))
        upscaled = await client.upscale(made.images[0].media_generation_id, resolution,
                                        captcha_retry=2)
        stats = sim.stats()
    assert upscaled.resolution == resolution and upscaled.format == "jpeg"
    assert picture(upscaled.data) == ("JPEG", (long_side, long_side))
    assert stats["upscales"] == 1


async def test_a_generated_image_is_referenced_by_its_id_with_no_upload() -> None:
    async with sim_client() as (client, sim):
        first = await client.generate(request(count=4, email=ALICE))
        ids = tuple(i.media_generation_id for i in first.images) * 2
        mixed = await client.generate(request(context_references=ids[:6], aspect_ratio="auto"))
        stats = sim.stats()
    assert mixed.images[0].media_generation_id.startswith("user:")
    assert stats["uploads"] == 0 and stats["uploads_by_account"] == {}


async def test_uploads_read_the_media_answer() -> None:
    async with sim_client() as (client, _):
        asset = await client.upload_asset(BOB, make_png(20, 10), "image/png")
        made = await client.generate(request(context_references=(asset.media_generation_id,)))
    assert (asset.width, asset.height) == (20, 10)
    assert made.images[0].media_generation_id.startswith("user:")


async def test_throttled_account_pauses_for_30_minutes() -> None:
    async with sim_client(throttles=((ALICE, 0.0),)) as (client, sim):
        with pytest.raises(AccountPausedError) as caught:
            await client.generate(request(email=ALICE, model="nano-banana-pro"))
        still_fine = await client.generate(request(email=BOB))
        stats = sim.stats()
    assert caught.value.pause == 1800.0
    assert caught.value.reason == "PUBLIC_ERROR_USER_REQUESTS_THROTTLED"
    assert still_fine.images
    assert stats["rate_limited"] == {"PUBLIC_ERROR_USER_REQUESTS_THROTTLED": 1}


async def test_account_quota_reached_pauses_too() -> None:
    async with sim_client(account_quota=0) as (client, _):
        with pytest.raises(AccountPausedError) as caught:
            await client.generate(request(email=ALICE))
    assert caught.value.reason == "PUBLIC_ERROR_USER_QUOTA_REACHED"
    assert caught.value.pause == 1800.0


async def test_per_model_quota_lasts_until_the_simulators_midnight() -> None:
    start = dt.datetime(2026, 7, 15, 23, 0, 0, tzinfo=dt.UTC).timestamp()
    async with sim_client(model_quotas=(("nano-banana-pro", 1),), clock_start=start,
                          time_scale=1.0, latency_min=0.0, latency_max=0.0) as (client, _):
        await client.generate(request(email=ALICE, model="nano-banana-pro"))
        with pytest.raises(ModelQuotaError) as caught:
            await client.generate(request(email=ALICE, model="nano-banana-pro"))
        other = await client.generate(request(email=ALICE, model="nano-banana-2"))
    assert caught.value.model == "nano-banana-pro"
    assert 3590 <= caught.value.pause <= 3600  # from the Date header: about an hour to midnight
    assert other.images


async def test_no_eligible_account_says_how_long_to_wait() -> None:
    async with sim_client(throttles=((ALICE, 0.0), (BOB, 0.0)), time_scale=1.0,
                          latency_min=0.0, latency_max=0.0) as (client, _):
        for email in (ALICE, BOB):
            with pytest.raises(AccountPausedError):
                await client.generate(request(email=email))
        with pytest.raises(NoEligibleAccountError) as caught:
            await client.generate(request())
    assert caught.value.reason == "no_eligible_account"
    assert 1790 <= caught.value.pause <= 1800  # Retry-After: until ALICE is back


async def test_plain_capacity_429_stays_capacity_in_2026() -> None:
    async with sim_client(capacity=CapacitySpec(kind="constant", level=0),
                          reject_status="429") as (client, _):
        with pytest.raises(CapacityError) as caught:
            await client.generate(request(email=ALICE))
    assert type(caught.value) is CapacityError


async def test_a_refused_captcha_is_a_captcha_error() -> None:
    async with sim_client(captcha_fail_rate=1.0) as (client, sim):
        with pytest.raises(CaptchaError) as caught:
            await client.generate(request(email=ALICE, captcha_retry=3))
        stats = sim.stats()
    assert caught.value.status == 403
    assert str(caught.value.reason).startswith("captcha_quality:")
    assert stats["captcha_refusals"] == 1
