"""The simulator in 2026-07: media[] answers, signed URLs, upscale, quotas, captcha."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import io
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from flowpipe.sim import CapacitySpec, SimConfig, create_app
from flowpipe.sim.ids import parse_id
from flowpipe.sim.state import SimState

from .helpers import API, AUTH, image_bytes, stats, upload

A, B = "a@example.com", "b@example.com"
THROTTLED = "PUBLIC_ERROR_USER_REQUESTS_THROTTLED"


class Clock:
    """A hand-moved clock: API time is what a test says it is (time scale 1)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


Sim = tuple[TestClient[Any, Any], Clock]
MakeSim26 = Callable[..., Awaitable[Sim]]


@pytest.fixture
def make_sim26(aiohttp_client: Any) -> MakeSim26:
    """A 2026-07 simulator with no latency and a hand-moved clock."""

    async def make(**overrides: Any) -> Sim:
        config = SimConfig(**{
            "dialect": "2026-07", "time_scale": 1.0, "latency_min": 0.0, "latency_max": 0.0,
            "capacity": CapacitySpec(kind="constant", level=20), "accounts": (A, B),
            **overrides,
        })
        clock = Clock()
        client = await aiohttp_client(create_app(config, state=SimState(config, clock=clock)))
        return client, clock

    return make


async def post(client: TestClient[Any, Any], path: str, **body: Any) -> tuple[int, Any, Any]:
    async with client.post(f"{API}{path}", json=body, headers=AUTH) as response:
        return response.status, await response.json(), response.headers


async def gen(client: TestClient[Any, Any], **body: Any) -> tuple[int, Any, Any]:
    body.setdefault("prompt", "a lighthouse in fog")
    body.setdefault("count", 1)
    return await post(client, "/images", **body)


def generated(body: Any, index: int = 0) -> dict[str, Any]:
    image: dict[str, Any] = body["media"][index]["image"]["generatedImage"]
    return image


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def fetch(client: TestClient[Any, Any], url: str) -> tuple[int, bytes]:
    async with client.get(path_of(url)) as response:  # no Authorization: none is needed
        return response.status, await response.read()


# -- answers ---------------------------------------------------------------------------------


async def test_media_answer_with_signed_urls_and_some_bytes_inline(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26(encoded_image_rate=0.5, png_rate=0.0)
    status, body, headers = await gen(client, model="nano-banana-pro", aspectRatio="16:9",
                                      count=4, seed=1, email=A)
    assert status == 200, body
    assert body["jobId"] and len(body["media"]) == 4
    images = [generated(body, i) for i in range(4)]
    for image in images:
        assert image["seed"] == 1 and image["modelNameType"] == "GEM_PIX_PRO"
        assert image["aspectRatio"] == "IMAGE_ASPECT_RATIO_16_9"
        parsed = parse_id(image["mediaGenerationId"])  # a string here, not nested
        assert parsed is not None and parsed.email == A
        assert "Signature=" in image["fifeUrl"] and "Expires=" in image["fifeUrl"]
    inline = [i for i in images if "encodedImage" in i]
    assert 0 < len(inline) < 4  # deterministic per image: this seed gives a mix
    for image in images:
        status, data = await fetch(client, image["fifeUrl"])
        assert status == 200
        with Image.open(io.BytesIO(data)) as picture:
            assert (picture.format, picture.size) == ("JPEG", (1376, 768))
        if "encodedImage" in image:
            assert base64.b64decode(image["encodedImage"]) == data
    assert stats(client)["fife"]["ok"] == 4
    assert "Date" in headers


async def test_png_rate_sends_png_bytes(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26(encoded_image_rate=1.0, png_rate=1.0)
    status, body, _ = await gen(client, email=A, count=2)
    assert status == 200
    for index in range(2):
        data = base64.b64decode(generated(body, index)["encodedImage"])
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert (await fetch(client, generated(body, index)["fifeUrl"]))[1] == data


async def test_a_url_expires_after_the_ttl_and_a_tampered_one_is_refused(
    make_sim26: MakeSim26,
) -> None:
    client, clock = await make_sim26(fife_ttl=600.0)
    _, body, _ = await gen(client, email=A)
    url = generated(body)["fifeUrl"]
    clock.advance(599)
    assert (await fetch(client, url))[0] == 200
    assert (await fetch(client, url.replace("Signature=", "Signature=0")))[0] == 403
    expires = url.split("Expires=")[1].split("&")[0]
    assert (await fetch(client, url.replace(expires, str(float(expires) + 1e6))))[0] == 403
    clock.advance(2)
    status, text = await fetch(client, url)
    assert (status, text) == (403, b"signed URL expired")
    assert stats(client)["fife"] == {"ok": 1, "expired": 1, "tampered": 2, "unknown": 0}


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"model": "imagen-3"}, "Unsupported model imagen-3. Supported values: nano-banana-2-lite, "
                                "nano-banana-2, nano-banana-pro, imagen-4, nano-banana"),
        ({"aspectRatio": "landscape"}, "Unsupported aspectRatio landscape. Supported values: "
                                       "16:9, 4:3, 1:1, 3:4, 9:16, auto"),
        ({"aspectRatio": "auto"}, "aspectRatio auto is only valid with at least one reference_*"),
        ({"reference_11": "x"}, "Model nano-banana-2-lite supports maximum 10 references"),
        ({"captchaRetry": 11}, "captchaRetry must be an integer between 1 and 10"),
        ({"captchaRetry": 2, "captchaToken": "t"},
         "Only one of captchaRetry, captchaToken, captchaOrder may be given"),
    ],
    ids=["model", "legacy-ratio", "auto-alone", "reference-11", "captcha-range", "captcha-two"],
)
async def test_400_texts_of_2026(make_sim26: MakeSim26, body: dict[str, Any], text: str) -> None:
    client, _ = await make_sim26()
    status, answer, _ = await gen(client, email=A, **body)
    assert (status, answer) == (400, {"error": text})


async def test_aliases_run_their_model_and_old_reference_fields_are_ignored(
    make_sim26: MakeSim26,
) -> None:
    client, _ = await make_sim26()
    status, body, _ = await gen(client, email=A, model="imagen-4", contextReference_1="junk")
    assert status == 200 and generated(body)["modelNameType"] == "GEM_PIX_2_LITE"


async def test_without_email_the_accounts_are_balanced(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26()
    owners = set()
    for seed in range(4):
        _, body, _ = await gen(client, seed=seed)
        parsed = parse_id(generated(body)["mediaGenerationId"])
        assert parsed is not None
        owners.add(parsed.email)
    assert owners == {A, B}


async def test_ten_references_by_id_need_no_upload(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26()
    _, first, _ = await gen(client, email=A, count=4, seed=1)
    _, second, _ = await gen(client, email=A, count=4, seed=2)
    ids = [generated(b, i)["mediaGenerationId"] for b in (first, second) for i in range(4)]
    refs = {f"reference_{n}": ids[(n - 1) % 8] for n in range(1, 11)}
    status, body, _ = await gen(client, aspectRatio="auto", **refs)
    assert status == 200, body
    assert stats(client)["uploads"] == 0


# -- upscale --------------------------------------------------------------------------------


@pytest.mark.parametrize(("resolution", "size"), [("2k", (2048, 1143)), ("4k", (4096, 2286))])
async def test_upscale_answers_the_image_at_the_resolution(
    make_sim26: MakeSim26, resolution: str, size: tuple[int, int]
) -> None:
    client, _ = await make_sim26()
    _, body, _ = await gen(client, email=A)
    status, answer, _ = await post(client, "/images/upscale", resolution=resolution,
                                   mediaGenerationId=generated(body)["mediaGenerationId"])
    assert status == 200, answer
    with Image.open(io.BytesIO(base64.b64decode(answer["encodedImage"]))) as picture:
        assert picture.size == size
    assert stats(client)["upscales"] == 1


async def test_nano_500_rate_hits_every_nano_model_without_references(
    make_sim26: MakeSim26,
) -> None:
    client, _ = await make_sim26(nano_500_rate=1.0)
    for model in ("nano-banana-2-lite", "nano-banana-2", "nano-banana-pro", "imagen-4"):
        status, body, _ = await gen(client, model=model, email=A)  # imagen-4: 2-lite now
        assert status == 500, (model, body)
    _, asset = await upload(client, image_bytes("PNG"), "image/png", A)
    status, body, _ = await gen(client, model="nano-banana-pro", email=A,
                                reference_1=asset["media"]["name"])
    assert status == 200, body


async def test_upscale_refusals(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26()
    _, body, _ = await gen(client, email=A)
    made = generated(body)["mediaGenerationId"]
    _, asset = await upload(client, image_bytes("PNG"), "image/png", A)
    cases = [
        ({"mediaGenerationId": made, "resolution": "8k"}, 400,
         "Unsupported resolution 8k. Supported values: 2k, 4k"),
        ({"resolution": "2k"}, 400, "mediaGenerationId is required"),
        ({"mediaGenerationId": asset["media"]["name"], "resolution": "2k"}, 400,
         "Only generated images can be upscaled"),
        ({"mediaGenerationId": made.replace("-image:", "-image:X"), "resolution": "2k"}, 403, None),
    ]
    for body_, status, text in cases:
        got, answer, _ = await post(client, "/images/upscale", **body_)
        assert got == status, answer
        if text is not None:
            assert answer == {"error": text}


async def test_the_2025_simulator_has_no_upscale(make_sim: Any) -> None:
    client = await make_sim()
    async with client.post(f"{API}/images/upscale", json={}, headers=AUTH) as response:
        assert response.status == 404


# -- uploads -----------------------------------------------------------------------------------


async def test_2026_uploads_answer_media_and_take_webp(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26()
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(buffer, "WEBP")
    status, body = await upload(client, buffer.getvalue(), "image/webp", B)
    assert status == 200, body
    assert parse_id(body["media"]["name"]) is not None
    assert body["media"]["image"] == {"width": 40, "height": 30}
    assert stats(client)["uploads_by_account"] == {B: 1}


async def test_a_reupload_of_a_generated_image_to_its_maker_is_counted(
    make_sim26: MakeSim26,
) -> None:
    client, _ = await make_sim26(png_rate=0.0)
    _, body, _ = await gen(client, email=A)
    _, data = await fetch(client, generated(body)["fifeUrl"])
    await upload(client, data, "image/jpeg", B)  # another account: needed, not counted
    assert stats(client)["generated_reuploads"] == {}
    await upload(client, data, "image/jpeg", A)  # its maker: the id would have done
    counts = stats(client)
    assert counts["generated_reuploads"] == {A: 1}
    assert counts["uploads_by_account"] == {A: 1, B: 1}


# -- quotas ------------------------------------------------------------------------------------


def reason(body: Any) -> str:
    error = body["error"]
    return str(error) if isinstance(error, str) else str(error["details"][0]["reason"])


async def test_throttle_takes_the_account_out_for_30_minutes(make_sim26: MakeSim26) -> None:
    client, clock = await make_sim26(throttles=((A, 100.0),))
    assert (await gen(client, email=A))[0] == 200
    clock.advance(100)
    status, body, headers = await gen(client, email=A)
    assert (status, reason(body)) == (429, THROTTLED)
    assert body["error"]["message"] == "Resource has been exhausted (e.g. check quota)."
    assert "Retry-After" not in headers
    clock.advance(1799)
    assert (await gen(client, email=A))[0] == 429
    assert (await gen(client, email=B))[0] == 200  # the others go on
    assert (await gen(client))[0] == 200  # balanced to B
    clock.advance(1)
    assert (await gen(client, email=A))[0] == 200  # back, and throttled only once
    counts = stats(client)
    assert counts["paused_hits"] == {A: 1}
    assert counts["rate_limited"] == {THROTTLED: 2}
    assert counts["pauses"] == [{"account": A, "reason": THROTTLED, "model": None,
                                 "from": 100.0, "until": 1900.0}]


async def test_no_eligible_account_when_every_account_is_out(make_sim26: MakeSim26) -> None:
    client, clock = await make_sim26(throttles=((A, 0.0), (B, 0.0)))
    assert (await gen(client, email=A))[0] == 429
    clock.advance(600)
    assert (await gen(client, email=B))[0] == 429
    clock.advance(10)
    status, body, headers = await gen(client)
    assert (status, body) == (429, {"error": "no_eligible_account", "retryAfter": 1190})
    assert headers["Retry-After"] == "1190"  # A comes back first, at 1800


async def test_account_quota_reached(make_sim26: MakeSim26) -> None:
    client, clock = await make_sim26(account_quota=2)
    for _ in range(2):
        assert (await gen(client, email=A))[0] == 200
    status, body, _ = await gen(client, email=A)
    assert (status, reason(body)) == (429, "PUBLIC_ERROR_USER_QUOTA_REACHED")
    clock.advance(1800)
    assert (await gen(client, email=A))[0] == 200


async def test_model_quota_stops_that_model_on_that_account_until_midnight(
    make_sim26: MakeSim26,
) -> None:
    start = dt.datetime(2026, 7, 15, 23, 59, 0, tzinfo=dt.UTC).timestamp()
    client, clock = await make_sim26(model_quotas=(("nano-banana-pro", 2),), clock_start=start)
    for _ in range(2):
        assert (await gen(client, email=A, model="nano-banana-pro"))[0] == 200
    clock.advance(10)
    status, body, headers = await gen(client, email=A, model="nano-banana-pro")
    assert (status, reason(body)) == (429, "PUBLIC_ERROR_PER_MODEL_DAILY_QUOTA_REACHED")
    date = email.utils.parsedate_to_datetime(headers["Date"])
    assert date == dt.datetime(2026, 7, 15, 23, 59, 10, tzinfo=dt.UTC)  # the sim's clock
    assert (await gen(client, email=A, model="nano-banana-2"))[0] == 200  # other models go on
    assert (await gen(client, email=B, model="nano-banana-pro"))[0] == 200  # other accounts too
    clock.advance(50)  # 00:00:00 UTC
    assert (await gen(client, email=A, model="nano-banana-pro"))[0] == 200
    assert stats(client)["pauses"][0]["until"] == 60.0


async def test_a_2026_capacity_429_has_no_reason(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26(capacity=CapacitySpec(kind="constant", level=0),
                                 reject_status="429")
    status, body, _ = await gen(client, email=A)
    assert status == 429 and "details" not in body["error"]
    assert stats(client)["rate_limited"] == {"capacity": 1}


# -- captcha -----------------------------------------------------------------------------------


async def test_a_refused_captcha_is_a_403_with_its_prefix(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26(captcha_fail_rate=1.0)
    status, body, _ = await gen(client, email=A, captchaRetry=4)
    assert status == 403
    assert body["error"] == (
        "captcha_quality: the reCAPTCHA score was too low on all 4 attempts"
    )
    assert stats(client)["captcha_refusals"] == 1


async def test_more_captcha_tries_are_refused_less_often(make_sim26: MakeSim26) -> None:
    client, _ = await make_sim26(captcha_fail_rate=0.5)
    refused = {}
    for tries in (1, 10):
        statuses = [(await gen(client, email=A, prompt=f"p{i}", captchaRetry=tries))[0]
                    for i in range(24)]
        refused[tries] = statuses.count(403)
    assert refused[1] > refused[10]
    assert 0 < refused[1] < 24


def test_2026_knobs_need_the_2026_dialect() -> None:
    from flowpipe.errors import UsageError

    with pytest.raises(UsageError, match="need --dialect 2026-07"):
        SimConfig(throttles=(("sim@example.com", 1.0),))
    with pytest.raises(UsageError, match="not one of the simulator's accounts"):
        SimConfig(dialect="2026-07", throttles=(("x@example.com", 1.0),))
    with pytest.raises(UsageError, match="has no such model"):
        SimConfig(dialect="2026-07", model_quotas=(("dall-e", 1),))


async def test_fife_expired_rate_stales_urls_and_a_new_make_draws_again(
    make_sim26: MakeSim26,
) -> None:
    client, _ = await make_sim26(fife_expired_rate=0.5, encoded_image_rate=0.0)

    async def read(seed: int) -> int:
        _, body, _ = await gen(client, email=A, seed=seed)
        return (await fetch(client, generated(body)["fifeUrl"]))[0]

    first = [await read(seed) for seed in range(16)]
    assert 0 < first.count(403) < 16  # about half are issued stale
    stale = [seed for seed, status in enumerate(first) if status == 403]
    again = [await read(seed) for seed in stale]
    assert 200 in again  # the same request made again gets a fresh draw
    assert stats(client)["fife"]["expired"] == first.count(403) + again.count(403)
