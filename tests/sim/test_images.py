"""POST /images over loopback: every status on the API page, with the page's bodies."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from PIL import Image

from flowpipe.sim import CapacitySpec

from .helpers import (
    API,
    AUTH,
    PAGE_401,
    PAGE_402,
    PAGE_429,
    PAGE_500,
    PAGE_503,
    PAGE_596,
    PAGE_UNSAFE_400,
    MakeSim,
    decoded,
    generate,
    hold_slots,
    image_bytes,
    media_id,
    stats,
    upload,
)

SLOW = {"latency_min": 300.0, "latency_max": 300.0}  # 0.3 s real at the test time scale


async def test_200_has_the_pages_shape(make_sim: MakeSim) -> None:
    client = await make_sim()
    status, body = await generate(
        client, prompt="A serene mountain landscape", model="imagen-4", count=4, seed=123456
    )
    assert status == 200
    (panel,) = body["imagePanels"]
    assert panel["prompt"] == "A serene mountain landscape"
    images = panel["generatedImages"]
    assert [image["seed"] for image in images] == [123456] * 4
    first = images[0]
    assert first["modelNameType"] == "IMAGEN_3_5"
    assert first["aspectRatio"] == "IMAGE_ASPECT_RATIO_LANDSCAPE"
    assert first["requestData"]["promptInputs"] == [{"textInput": "A serene mountain landscape"}]
    assert first["mediaGenerationId"]["mediaGenerationId"].startswith("user:")
    assert "-email:73696d406578616d706c652e636f6d-image:" in media_id(body)
    assert len({media_id(body, i) for i in range(4)}) == 4
    assert stats(client)["generations"] == 1 and stats(client)["images"] == 4


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"prompt": ""}, "prompt is required"),
        ({"prompt": "x", "count": 5}, "count must be an integer between 1 and 4"),
        ({"prompt": "x", "seed": -1}, "seed must be an integer >= 0"),
        (
            {"prompt": "x", "model": "imagen-3"},
            "Unsupported model imagen-3. Supported values: imagen-4, nano-banana",
        ),
        (
            {"prompt": "x", "aspectRatio": "wide"},
            "Unsupported aspectRatio wide. Supported values: landscape, portrait, square",
        ),
        (
            {"prompt": "x", "model": "nano-banana"}
            | {f"contextReference_{i}": f"user:1-email:61-image:A{i}" for i in range(1, 6)},
            "Model nano-banana supports maximum 4 context references",
        ),
        (
            {"prompt": "x", "model": "imagen-4"}
            | {f"contextReference_{i}": f"user:1-email:61-image:A{i}" for i in range(1, 5)},
            "Model imagen-4 supports maximum 3 context references",
        ),
        (
            {"prompt": "x", "model": "nano-banana", "styleReference_1": "user:1-email:61-image:A"},
            "Model nano-banana does not support styleReference_1 (imagen-4 only)",
        ),
        ({"prompt": "x", "contextReference_1": "not-an-id"}, "Invalid mediaGenerationId not-an-id"),
    ],
    ids=[
        "no-prompt",
        "count",
        "seed",
        "model",
        "aspect",
        "nano-5-refs",
        "imagen-4-refs",
        "nano-style",
        "bad-id",
    ],
)
async def test_400_plain_error(make_sim: MakeSim, body: dict[str, Any], text: str) -> None:
    client = await make_sim()
    assert await generate(client, **body) == (400, {"error": text})
    assert stats(client)["images_statuses"] == {"400": 1}


async def test_400_for_a_body_that_is_not_json(make_sim: MakeSim) -> None:
    client = await make_sim()
    async with client.post(f"{API}/images", data=b"{", headers=AUTH) as response:
        assert (response.status, await response.json()) == (400, {"error": "Invalid JSON body"})


async def test_400_unsafe_for_the_marker_word_on_imagen_4(make_sim: MakeSim) -> None:
    client = await make_sim()
    assert await generate(client, prompt="a Forbidden temple") == (400, PAGE_UNSAFE_400)


async def test_500_for_the_marker_word_on_nano_banana(make_sim: MakeSim) -> None:
    client = await make_sim(moderation_word="taboo")
    assert await generate(client, prompt="taboo", model="nano-banana") == (500, PAGE_500)
    assert (await generate(client, prompt="forbidden", model="nano-banana"))[0] == 200


async def test_moderation_rate_one_moderates_everything(make_sim: MakeSim) -> None:
    client = await make_sim(moderation_rate=1.0)
    assert await generate(client, model="imagen-4") == (400, PAGE_UNSAFE_400)
    assert await generate(client, model="nano-banana") == (500, PAGE_500)


async def test_moderation_by_rate_passes_on_a_retry(make_sim: MakeSim) -> None:
    client = await make_sim(moderation_rate=0.5, seed=3)
    statuses = [(await generate(client, seed=1, count=1))[0] for _ in range(16)]
    assert set(statuses) == {200, 400}


async def test_nano_500_rate_hits_nano_banana_without_references_only(make_sim: MakeSim) -> None:
    client = await make_sim(nano_500_rate=1.0)
    assert await generate(client, model="nano-banana") == (500, PAGE_500)
    assert (await generate(client, model="imagen-4"))[0] == 200
    _, uploaded = await upload(client, image_bytes("PNG"), "image/png")
    ref = uploaded["mediaGenerationId"]["mediaGenerationId"]
    status, _ = await generate(client, model="nano-banana", contextReference_1=ref)
    assert status == 200


@pytest.mark.parametrize(
    "header", ["Bearer wrong", "sim-token", ""], ids=["wrong", "no-scheme", "none"]
)
async def test_401_for_a_bad_token(make_sim: MakeSim, header: str) -> None:
    client = await make_sim()
    headers = {"Authorization": header} if header else {}
    async with client.post(f"{API}/images", json={"prompt": "x"}, headers=headers) as response:
        assert (response.status, await response.json()) == (401, PAGE_401)


async def test_any_configured_token_is_accepted(make_sim: MakeSim) -> None:
    client = await make_sim(tokens=("one", "two"))
    headers = {"Authorization": "Bearer two"}
    async with client.post(f"{API}/images", json={"prompt": "x"}, headers=headers) as response:
        assert response.status == 200


async def test_402_when_credits_run_out(make_sim: MakeSim) -> None:
    client = await make_sim(credits=1)
    assert (await generate(client))[0] == 200
    assert await generate(client) == (402, PAGE_402)
    assert stats(client)["credits_left"] == 0


async def test_a_moderated_generation_costs_no_credit(make_sim: MakeSim) -> None:
    client = await make_sim(credits=1)
    assert (await generate(client, prompt="forbidden"))[0] == 400
    assert (await generate(client))[0] == 200


async def test_403_for_a_reference_of_another_account(make_sim: MakeSim) -> None:
    client = await make_sim(accounts=("a@example.com", "b@example.com"))
    _, body = await generate(client, email="a@example.com", count=1)
    ref = media_id(body)
    owner = ref.split("-email:")[0]
    status, answer = await generate(client, email="b@example.com", contextReference_1=ref)
    assert status == 403
    assert answer == {"error": f"Unauthorized access to {owner} detected in reference {ref}"}


async def test_a_reference_finds_its_account_without_email(make_sim: MakeSim) -> None:
    client = await make_sim(accounts=("a@example.com", "b@example.com"))
    _, body = await generate(client, email="b@example.com", count=1)
    status, answer = await generate(client, styleReference_1=media_id(body), count=1)
    assert status == 200
    assert "-email:" + b"b@example.com".hex() + "-" in media_id(answer)


async def test_400_without_email_when_several_accounts(make_sim: MakeSim) -> None:
    client = await make_sim(accounts=("a@example.com", "b@example.com"))
    expected = {"error": "email is required when more than one account is configured"}
    assert await generate(client) == (400, expected)


async def test_404_for_an_unknown_account(make_sim: MakeSim) -> None:
    client = await make_sim()
    expected = {"error": "Google Flow account nobody@example.com not found"}
    assert await generate(client, email="nobody@example.com") == (404, expected)


async def test_596_for_a_broken_account(make_sim: MakeSim) -> None:
    client = await make_sim(broken_accounts=("broken@example.com",))
    assert await generate(client, email="broken@example.com") == (596, PAGE_596)
    assert (await generate(client, email="sim@example.com"))[0] == 200


@pytest.mark.parametrize(
    ("mode", "status", "body"), [("429", 429, PAGE_429), ("503", 503, PAGE_503)]
)
async def test_over_capacity_is_rejected_at_once(
    make_sim: MakeSim, mode: str, status: int, body: Any
) -> None:
    client = await make_sim(
        capacity=CapacitySpec(kind="constant", level=1), reject_status=mode, **SLOW
    )
    (held,) = await hold_slots(client, 1)
    assert await generate(client) == (status, body)
    assert not held.done()  # rejected while the slot was still taken: no latency
    assert (await held)[0] == 200


async def test_mixed_rejections_use_both_statuses(make_sim: MakeSim) -> None:
    client = await make_sim(capacity=CapacitySpec(kind="constant", level=1), **SLOW)
    held = await hold_slots(client, 1)
    seen = {(await generate(client))[0] for _ in range(24)}
    await asyncio.gather(*held)
    assert seen == {429, 503}


async def test_burst_of_40_at_capacity_5(make_sim: MakeSim) -> None:
    client = await make_sim(capacity=CapacitySpec(kind="constant", level=5), **SLOW)
    results = await asyncio.gather(*(generate(client, seed=i, count=1) for i in range(40)))
    statuses = [status for status, _ in results]
    served = statuses.count(200)
    assert 5 <= served <= 10
    assert statuses.count(429) + statuses.count(503) == 40 - served
    assert stats(client)["max_concurrent"] == 5


@pytest.mark.parametrize(("per_account", "served_by_b"), [(False, 0), (True, 2)])
async def test_capacity_is_shared_or_per_account(
    make_sim: MakeSim, per_account: bool, served_by_b: int
) -> None:
    client = await make_sim(
        accounts=("a@example.com", "b@example.com"),
        capacity=CapacitySpec(kind="constant", level=2),
        capacity_per_account=per_account,
        **SLOW,
    )
    held = await hold_slots(client, 2, email="a@example.com")
    assert (await generate(client, email="a@example.com"))[0] in (429, 503)
    results = await asyncio.gather(
        *(generate(client, seed=10 + i, email="b@example.com") for i in range(2))
    )
    assert [status for status, _ in results].count(200) == served_by_b
    assert all(status == 200 for status, _ in await asyncio.gather(*held))


@pytest.mark.parametrize(
    ("model", "aspect", "size"),
    [
        ("imagen-4", "landscape", (1408, 768)),
        ("imagen-4", "portrait", (768, 1408)),
        ("imagen-4", "square", (1024, 1024)),
        ("nano-banana", "landscape", (1344, 768)),
        ("nano-banana", "portrait", (768, 1344)),
        ("nano-banana", "square", (1024, 1024)),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_jpeg_at_the_native_size(
    make_sim: MakeSim, model: str, aspect: str, size: tuple[int, int]
) -> None:
    client = await make_sim()
    status, body = await generate(client, model=model, aspectRatio=aspect, count=1)
    assert status == 200
    with Image.open(io.BytesIO(decoded(body))) as image:
        assert (image.format, image.size) == ("JPEG", size)


async def test_equal_requests_give_equal_bytes_across_servers(make_sim: MakeSim) -> None:
    request = {"prompt": "red kite over dunes", "seed": 7, "count": 2}
    first = await make_sim()
    second = await make_sim(seed=99)
    _, a = await generate(first, **request)
    _, b = await generate(second, **request)
    _, c = await generate(first, **request)
    assert decoded(a, 0) == decoded(b, 0) == decoded(c, 0)
    assert decoded(a, 1) == decoded(b, 1)
    assert decoded(a, 0) != decoded(a, 1)


@pytest.mark.parametrize(
    "change",
    [{"prompt": "blue kite over dunes"}, {"seed": 8}, {"model": "nano-banana"}],
    ids=["prompt", "seed", "model"],
)
async def test_a_different_request_gives_different_bytes(
    make_sim: MakeSim, change: dict[str, Any]
) -> None:
    client = await make_sim()
    base = {"prompt": "red kite over dunes", "seed": 7, "count": 1, "aspectRatio": "square"}
    _, a = await generate(client, **base)
    _, b = await generate(client, **(base | change))
    assert decoded(a) != decoded(b)


async def test_references_shape_the_image_by_content(make_sim: MakeSim) -> None:
    client = await make_sim(accounts=("a@example.com", "b@example.com"))
    png = image_bytes("PNG")
    _, up_a = await upload(client, png, "image/png", "a@example.com")
    _, up_b = await upload(client, png, "image/png", "b@example.com")
    _, other = await upload(client, image_bytes("PNG", (30, 30)), "image/png", "a@example.com")
    ids = [u["mediaGenerationId"]["mediaGenerationId"] for u in (up_a, up_b, other)]
    request = {"prompt": "shoe", "seed": 1, "count": 1, "model": "nano-banana"}
    _, with_a = await generate(client, contextReference_1=ids[0], **request)
    _, with_b = await generate(client, contextReference_1=ids[1], **request)
    _, with_other = await generate(client, contextReference_1=ids[2], **request)
    _, without = await generate(client, email="a@example.com", **request)
    assert decoded(with_a) == decoded(with_b)
    assert len({decoded(with_a), decoded(with_other), decoded(without)}) == 3


@pytest.mark.parametrize(
    ("refs", "name_type", "size"),
    [
        ({"contextReference_1": 0}, "GEM_PIX", (1344, 768)),
        ({"styleReference_1": 0}, "R2I", (1408, 768)),
        ({"styleReference_1": 0, "contextReference_1": 0}, "R2I", (1408, 768)),
    ],
    ids=["context-picks-nano", "style-keeps-imagen", "style-and-context-keep-imagen"],
)
async def test_model_auto_selection(
    make_sim: MakeSim, refs: dict[str, int], name_type: str, size: tuple[int, int]
) -> None:
    client = await make_sim()
    _, uploaded = await upload(client, image_bytes("JPEG"), "image/jpeg")
    ref = uploaded["mediaGenerationId"]["mediaGenerationId"]
    status, body = await generate(client, count=1, **{key: ref for key in refs})
    assert status == 200
    image = body["imagePanels"][0]["generatedImages"][0]
    assert image["modelNameType"] == name_type
    assert image["requestData"]["imageGenerationRequestData"]["imageGenerationImageInputs"] == [
        {"mediaGenerationId": ref} for _ in refs
    ]
    with Image.open(io.BytesIO(decoded(body))) as picture:
        assert picture.size == size


async def test_multipart_form_bodies_are_accepted(make_sim: MakeSim) -> None:
    client = await make_sim()
    form = {"prompt": "tea cup", "count": "1", "seed": "5", "aspectRatio": "square"}
    async with client.post(f"{API}/images", data=form, headers=AUTH) as response:
        body = await response.json()
    assert response.status == 200
    assert body["imagePanels"][0]["generatedImages"][0]["seed"] == 5


async def test_reupload_of_a_generated_image_renders_like_the_original() -> None:
    """A reference by the original id and by a re-uploaded copy give equal bytes."""
    from flowpipe.api import FlowClient, ImageRequest
    from flowpipe.sim import SimConfig, running_sim

    config = SimConfig(tokens=("t0k3n-abcdef",), time_scale=0.0001)
    async with (
        running_sim(config) as sim,
        FlowClient(base_url=sim.base_url, token="t0k3n-abcdef") as client,
    ):
        first = await client.generate(ImageRequest("a red kite", count=1, seed=1))
        original = first.images[0]
        copy = await client.upload_asset("sim@example.com", original.data, "image/jpeg")
        by_id = await client.generate(
            ImageRequest(
                "the kite at sea",
                count=1,
                seed=2,
                context_references=(original.media_generation_id,),
            )
        )
        by_copy = await client.generate(
            ImageRequest(
                "the kite at sea", count=1, seed=2, context_references=(copy.media_generation_id,)
            )
        )
    assert by_id.images[0].data == by_copy.images[0].data
