"""The 2026-07 dialect through a MockTransport: bodies, media[], signed URLs, upscale, quotas."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from flowpipe.api import FetchPolicy, HTTPRequest, HTTPResponse, ImageRequest
from flowpipe.errors import (
    AccountPausedError,
    CapacityError,
    CaptchaError,
    ForbiddenReferenceError,
    ImageURLError,
    InvalidRequestError,
    ModelQuotaError,
    NoEligibleAccountError,
    ResponseError,
)

from .builders import (
    BASE,
    TOKEN,
    MakeClient,
    google_error,
    json_response,
    make_jpeg,
    make_png,
    media_doc,
    media_item,
)

FIFE = "https://lh3.fife.example/img/abc?Expires=99&Signature=s3cr3t-sig"
NEW = "2026-07"


class Recorder:
    """A ``sleep`` that only notes how long it was asked to wait."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def routes(
    api: Callable[[HTTPRequest], HTTPResponse], fife: Callable[[HTTPRequest], HTTPResponse]
) -> Callable[[HTTPRequest], HTTPResponse]:
    """API calls to ``api``, anything else (the image host) to ``fife``."""

    def handler(request: HTTPRequest) -> HTTPResponse:
        return api(request) if request.url.startswith(BASE) else fife(request)

    return handler


def image(data: bytes) -> Callable[[HTTPRequest], HTTPResponse]:
    return lambda r: HTTPResponse(200, {"content-type": "image/png"}, data)


def new_client(make_client: MakeClient, handler: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("sleep", Recorder())
    kwargs.setdefault("fetch", FetchPolicy(attempts=3, delay=(1.0, 2.0)))
    return make_client(handler, dialect=NEW, **kwargs)


def assert_no_secret(request: HTTPRequest) -> None:
    """Nothing of the token (or any credential header) goes to the image host."""
    names = {k.lower() for k in request.headers}
    assert not names & {"authorization", "cookie", "proxy-authorization"}
    blob = request.url + json.dumps(dict(request.headers)) + request.body.decode("latin-1")
    assert TOKEN not in blob and "Bearer" not in blob


# -- requests -------------------------------------------------------------------------------


async def test_2026_request_names_references_reference_n_and_sends_captcha_retry(
    make_client: MakeClient,
) -> None:
    png = make_png()
    client, transport = new_client(make_client, lambda r: json_response(
        200, media_doc(media_item(data=png))))
    refs = tuple(f"id{i}" for i in range(1, 11))
    request = ImageRequest("p", model="nano-banana-pro", aspect_ratio="auto", count=1, seed=3,
                           context_references=refs, dialect=NEW, captcha_retry=5)
    await client.generate(request)
    body = json.loads(transport.requests[0].body)
    assert body == {"prompt": "p", "model": "nano-banana-pro", "aspectRatio": "auto", "count": 1,
                    "seed": 3, "captchaRetry": 5, **{f"reference_{i}": f"id{i}" for i in
                                                     range(1, 11)}}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"style_reference": "s"}, "no style reference"),
        ({"context_references": tuple("abcdefghijk")}, "at most 10"),
        ({"model": "imagen-3"}, "no model 'imagen-3'"),
        ({"aspect_ratio": "landscape"}, "no aspect ratio 'landscape'"),
        ({"captcha_retry": 11}, "captchaRetry 11"),
    ],
    ids=["style", "eleven", "model", "legacy-ratio", "captcha-range"],
)
def test_2026_request_refuses_what_the_dialect_lacks(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequestError, match=words):
        ImageRequest("p", dialect=NEW, **kwargs)


def test_2025_request_refuses_the_2026_names_before_sending() -> None:
    with pytest.raises(InvalidRequestError, match="no model 'nano-banana-2'"):
        ImageRequest("p", model="nano-banana-2")
    with pytest.raises(InvalidRequestError, match="no aspect ratio '16:9'"):
        ImageRequest("p", aspect_ratio="16:9")
    with pytest.raises(InvalidRequestError, match="captchaRetry"):
        ImageRequest("p", captcha_retry=3)


async def test_a_request_of_another_dialect_is_not_sent(make_client: MakeClient) -> None:
    client, transport = new_client(make_client, lambda r: json_response(200, {}))
    with pytest.raises(InvalidRequestError, match="speaks api 2025-11, this client 2026-07"):
        await client.generate(ImageRequest("p"))
    assert transport.requests == []


# -- media[] and signed URLs ------------------------------------------------------------------


async def test_media_answer_inline_and_behind_a_signed_url(make_client: MakeClient) -> None:
    jpeg, png = make_jpeg(), make_png()
    doc = media_doc(media_item(data=jpeg, index=0, nested_id=True),
                    media_item(fife_url=FIFE, index=1, seed=43))
    client, transport = new_client(make_client, routes(lambda r: json_response(200, doc),
                                                       image(png)))
    result = await client.generate(ImageRequest("p", dialect=NEW))
    first, second = result.images
    assert (first.data, first.format, first.extension) == (jpeg, "jpeg", "jpg")
    assert (second.data, second.format, second.extension) == (png, "png", "png")
    assert [i.media_generation_id for i in result.images] == [
        "user:9-email:6a6f-image:NEW0", "user:9-email:6a6f-image:NEW1"]
    assert second.seed == 43 and second.model_name_type == "GEM_PIX_2"
    api_call, fetch = transport.requests
    assert api_call.headers["Authorization"] == f"Bearer {TOKEN}"
    assert (fetch.method, fetch.url) == ("GET", FIFE)
    assert_no_secret(fetch)
    generated = [m["image"]["generatedImage"] for m in result.raw["media"]]
    assert all("encodedImage" not in g for g in generated)
    assert generated[1]["fifeUrl"] == "https://lh3.fife.example/img/abc"  # no signature kept
    assert "s3cr3t-sig" not in json.dumps(result.raw)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
async def test_an_expired_or_refused_url_is_an_image_url_error_at_once(
    make_client: MakeClient, status: int
) -> None:
    doc = media_doc(media_item(fife_url=FIFE))
    client, transport = new_client(make_client, routes(
        lambda r: json_response(200, doc), lambda r: HTTPResponse(status, {}, b"Expired")))
    with pytest.raises(ImageURLError) as caught:
        await client.generate(ImageRequest("p", dialect=NEW))
    assert caught.value.status == status and caught.value.retryable
    assert len(transport.requests) == 2  # the API call and one read: no retry
    assert "s3cr3t-sig" not in str(caught.value) and "Signature" not in str(caught.value)


async def test_a_transient_failure_of_the_url_is_retried_after_a_pause(
    make_client: MakeClient,
) -> None:
    png = make_png()
    answers: list[Any] = [HTTPResponse(503, {}, b""), aiohttp.ServerDisconnectedError(),
                          HTTPResponse(200, {}, png)]

    def fife(request: HTTPRequest) -> HTTPResponse:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    sleep = Recorder()
    doc = media_doc(media_item(fife_url=FIFE))
    client, transport = new_client(make_client, routes(lambda r: json_response(200, doc), fife),
                                   sleep=sleep)
    result = await client.generate(ImageRequest("p", dialect=NEW))
    assert result.images[0].data == png
    assert len(sleep.slept) == 2 and all(1.0 <= s <= 2.0 for s in sleep.slept)
    assert all(not r.url.startswith(BASE) for r in transport.requests[1:])


async def test_a_url_that_never_answers_well_gives_up_after_the_attempts(
    make_client: MakeClient,
) -> None:
    sleep = Recorder()
    doc = media_doc(media_item(fife_url=FIFE))
    client, transport = new_client(make_client, routes(
        lambda r: json_response(200, doc),
        lambda r: HTTPResponse(200, {}, make_png()[:-20])), sleep=sleep)  # always cut short
    with pytest.raises(ImageURLError, match="no image after 3 attempts"):
        await client.generate(ImageRequest("p", dialect=NEW))
    assert len(transport.requests) == 4 and len(sleep.slept) == 2


async def test_redirects_are_followed_without_credentials(make_client: MakeClient) -> None:
    png = make_png()

    def fife(request: HTTPRequest) -> HTTPResponse:
        if "cdn2" not in request.url:
            return HTTPResponse(302, {"location": "https://cdn2.example/x.png?sig=2"}, b"")
        return HTTPResponse(200, {}, png)

    doc = media_doc(media_item(fife_url=FIFE))
    client, transport = new_client(make_client, routes(lambda r: json_response(200, doc), fife))
    result = await client.generate(ImageRequest("p", dialect=NEW))
    assert result.images[0].data == png
    assert [r.url for r in transport.requests[1:]] == [FIFE, "https://cdn2.example/x.png?sig=2"]
    for request in transport.requests[1:]:
        assert_no_secret(request)


@pytest.mark.parametrize(
    "url", [f"https://evil.example/steal?t={TOKEN}", "file:///etc/passwd", "ftp://x/y.png"],
    ids=["carries-the-token", "file", "ftp"],
)
async def test_a_url_that_would_leak_or_is_not_http_is_never_sent(
    make_client: MakeClient, url: str
) -> None:
    doc = media_doc(media_item(fife_url=url))
    client, transport = new_client(make_client, routes(lambda r: json_response(200, doc),
                                                       image(make_png())))
    with pytest.raises(ImageURLError) as caught:
        await client.generate(ImageRequest("p", dialect=NEW))
    assert len(transport.requests) == 1  # the API call only
    assert TOKEN not in str(caught.value)


async def test_a_redirect_to_a_url_with_the_token_is_not_followed(
    make_client: MakeClient,
) -> None:
    doc = media_doc(media_item(fife_url=FIFE))
    client, transport = new_client(make_client, routes(
        lambda r: json_response(200, doc),
        lambda r: HTTPResponse(302, {"location": f"https://x.example/?k={TOKEN}"}, b"")))
    with pytest.raises(ImageURLError, match="carries the API token"):
        await client.generate(ImageRequest("p", dialect=NEW))
    assert len(transport.requests) == 2


@pytest.mark.parametrize(
    ("generated", "field"),
    [
        ({"seed": 1, "mediaGenerationId": "m"}, "neither encodedImage nor fifeUrl"),
        ({"seed": 1, "fifeUrl": FIFE}, "mediaGenerationId is missing"),
        ({"seed": "1", "mediaGenerationId": "m", "fifeUrl": FIFE}, "seed: expected an integer"),
    ],
    ids=["no-bytes", "no-id", "seed-type"],
)
async def test_a_broken_media_entry_is_a_response_error_naming_the_field(
    make_client: MakeClient, generated: dict[str, Any], field: str
) -> None:
    doc = {"media": [{"image": {"generatedImage": generated}}]}
    client, _ = new_client(make_client, lambda r: json_response(200, doc))
    with pytest.raises(ResponseError, match=field) as caught:
        await client.generate(ImageRequest("p", dialect=NEW))
    assert "media[0].image.generatedImage" in str(caught.value)


async def test_png_inline_is_read_in_either_dialect(make_client: MakeClient) -> None:
    """2025-11's page speaks of JPEG only, but refusing a PNG would buy it again."""
    doc = media_doc(media_item(data=make_png(12, 7)))
    client, _ = new_client(make_client, lambda r: json_response(200, doc))
    [image] = (await client.generate(ImageRequest("p", dialect=NEW))).images
    assert (image.format, image.width, image.height) == ("png", 12, 7)
    old, _ = make_client(lambda r: json_response(200, doc))
    assert (await old.generate(ImageRequest("p"))).images[0].format == "png"


# -- upscale ---------------------------------------------------------------------------------


async def test_upscale_posts_the_id_and_resolution_and_reads_the_image(
    make_client: MakeClient,
) -> None:
    png = make_png(32, 18)
    client, transport = new_client(make_client, lambda r: json_response(
        200, {"encodedImage": base64.b64encode(png).decode(), "captcha": {"n": 1}}))
    result = await client.upscale("user:9-email:6a-image:X", "4k", captcha_retry=2)
    [sent] = transport.requests
    assert (sent.method, sent.url) == ("POST", f"{BASE}/images/upscale")
    assert json.loads(sent.body) == {"mediaGenerationId": "user:9-email:6a-image:X",
                                     "resolution": "4k", "captchaRetry": 2}
    assert (result.data, result.format, result.resolution) == (png, "png", "4k")
    assert result.media_generation_id is None and result.raw == {"captcha": {"n": 1}}


async def test_upscale_is_refused_before_sending_when_it_cannot_be(
    make_client: MakeClient,
) -> None:
    client, transport = new_client(make_client, lambda r: json_response(200, {}))
    with pytest.raises(InvalidRequestError, match="'8k' is not one of 2k, 4k"):
        await client.upscale("m", "8k")
    old, old_transport = make_client(lambda r: json_response(200, {}))
    with pytest.raises(InvalidRequestError, match="api 2025-11 cannot upscale"):
        await old.upscale("m", "2k")
    assert transport.requests == old_transport.requests == []


async def test_upscale_answer_without_an_image_is_a_response_error(
    make_client: MakeClient,
) -> None:
    client, _ = new_client(make_client, lambda r: json_response(200, {"captcha": {}}))
    with pytest.raises(ResponseError, match="encodedImage is missing"):
        await client.upscale("m", "2k")


# -- uploads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"media": {"name": "user:1-email:2-image:N", "image": {"width": 8, "height": 6}}},
         ("user:1-email:2-image:N", 8, 6)),
        ({"media": {"name": "n", "mediaGenerationId": "user:1-email:2-image:M"}},
         ("user:1-email:2-image:M", None, None)),
        ({"mediaGenerationId": {"mediaGenerationId": "user:1-email:2-image:O"}, "width": 4,
          "height": 4}, ("user:1-email:2-image:O", 4, 4)),
    ],
    ids=["media-name", "media-id", "2025-shape"],
)
async def test_both_shapes_of_the_assets_answer(
    make_client: MakeClient, answer: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    client, _ = new_client(make_client, lambda r: json_response(200, answer))
    asset = await client.upload_asset("me@example.com", make_png(), "image/png")
    assert (asset.media_generation_id, asset.width, asset.height) == expected


WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 " + bytes(14)


async def test_webp_uploads_only_in_2026(make_client: MakeClient) -> None:
    ok = {"media": {"name": "user:1-email:2-image:W"}}
    client, transport = new_client(make_client, lambda r: json_response(200, ok))
    await client.upload_asset("me@example.com", WEBP, "image/webp")
    assert transport.requests[0].headers["Content-Type"] == "image/webp"
    with pytest.raises(InvalidRequestError, match="the bytes are not a WEBP file"):
        await client.upload_asset("me@example.com", make_png(), "image/webp")
    old, old_transport = make_client(lambda r: json_response(200, ok))
    with pytest.raises(InvalidRequestError, match="is not image/png or image/jpeg"):
        await old.upload_asset("me@example.com", WEBP, "image/webp")
    assert old_transport.requests == []


# -- errors by dialect -----------------------------------------------------------------------

THROTTLED = google_error(429, "Resource has been exhausted (e.g. check quota).",
                         "RESOURCE_EXHAUSTED", "PUBLIC_ERROR_USER_REQUESTS_THROTTLED")


async def test_the_2025_capacity_429_stays_capacity(make_client: MakeClient) -> None:
    client, _ = make_client(lambda r: json_response(429, THROTTLED))
    with pytest.raises(CapacityError) as caught:
        await client.generate(ImageRequest("p"))
    assert caught.value.reason == "PUBLIC_ERROR_USER_REQUESTS_THROTTLED"


@pytest.mark.parametrize(
    ("body", "headers", "cls", "pause"),
    [
        (THROTTLED, {}, AccountPausedError, 1800.0),
        (google_error(429, "quota", "RESOURCE_EXHAUSTED", "PUBLIC_ERROR_USER_QUOTA_REACHED"),
         {}, AccountPausedError, 1800.0),
        (THROTTLED, {"retry-after": "120"}, AccountPausedError, 120.0),
        (google_error(429, "quota", "RESOURCE_EXHAUSTED",
                      "PUBLIC_ERROR_PER_MODEL_DAILY_QUOTA_REACHED"),
         {"date": "Wed, 15 Jul 2026 23:50:00 GMT"}, ModelQuotaError, 600.0),
        ({"error": "no_eligible_account", "retryAfter": 42}, {}, NoEligibleAccountError, 42.0),
        ({"error": "no_eligible_account: every account is out"}, {"retry-after": "7"},
         NoEligibleAccountError, 7.0),
        ({"error": "no_eligible_account"},
         {"retry-after": "Wed, 15 Jul 2026 12:01:30 GMT", "date": "Wed, 15 Jul 2026 12:00:00 GMT"},
         NoEligibleAccountError, 90.0),
        ({"error": "no_eligible_account"}, {}, NoEligibleAccountError, 60.0),
    ],
    ids=["throttled", "quota-reached", "retry-after-wins", "per-model-until-midnight",
         "no-eligible-body", "no-eligible-header", "no-eligible-http-date", "no-eligible-default"],
)
async def test_2026_429_reasons_pause_what_they_name(
    make_client: MakeClient, body: dict[str, Any], headers: dict[str, str],
    cls: type[Exception], pause: float,
) -> None:
    client, _ = new_client(make_client, lambda r: json_response(429, body, headers))
    with pytest.raises(cls) as caught:
        await client.generate(ImageRequest("p", model="nano-banana-2", dialect=NEW))
    error: Any = caught.value
    assert type(error) is cls and error.status == 429 and error.retryable
    assert error.pause == pause and error.model == "nano-banana-2"
    code = body["error"]["details"][0]["reason"] if isinstance(body["error"], dict) else (
        "no_eligible_account")
    assert code in error.reason  # the page's code, word for word
    assert not isinstance(error, CapacityError)


async def test_a_2026_429_without_a_known_reason_is_capacity(make_client: MakeClient) -> None:
    body = google_error(429, "Resource has been exhausted (e.g. check quota).",
                        "RESOURCE_EXHAUSTED")
    client, _ = new_client(make_client, lambda r: json_response(429, body))
    with pytest.raises(CapacityError):
        await client.generate(ImageRequest("p", dialect=NEW))


@pytest.mark.parametrize(("dialect", "cls"), [(NEW, CaptchaError),
                                               ("2025-11", ForbiddenReferenceError)])
async def test_captcha_refusal_is_its_own_error_in_2026(
    make_client: MakeClient, dialect: str, cls: type[Exception]
) -> None:
    text = "captcha_quality: the reCAPTCHA token was refused (3 attempts)"
    client, _ = make_client(lambda r: json_response(403, {"error": text}), dialect=dialect)
    with pytest.raises(cls) as caught:
        await client.generate(ImageRequest("p", dialect=dialect))
    assert caught.value.reason == text  # type: ignore[attr-defined]


async def test_a_foreign_reference_403_stays_forbidden_in_2026(make_client: MakeClient) -> None:
    text = "Unauthorized access to user:123 detected in reference user:123-email:61-image:X"
    client, _ = new_client(make_client, lambda r: json_response(403, {"error": text}))
    with pytest.raises(ForbiddenReferenceError):
        await client.generate(ImageRequest("p", dialect=NEW))


async def test_quota_errors_on_uploads_read_the_dialect_too(make_client: MakeClient) -> None:
    client, _ = new_client(make_client, lambda r: json_response(429, THROTTLED))
    with pytest.raises(AccountPausedError):
        await client.upload_asset("me@example.com", make_png(), "image/png")
