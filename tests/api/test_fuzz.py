"""Whatever comes back, the client ends in a typed result or a named APIError.

Hypothesis throws arbitrary statuses, headers and bodies (bytes, odd JSON, the page's
shapes with one field swapped for junk, invalid base64, non-JPEG bytes, huge strings)
and low-level exceptions at the whole client path. No json, base64, aiohttp or other
exception may escape.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from typing import Any

import aiohttp
import aiohttp.http_exceptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowpipe.api import (
    AccountInfo,
    FlowClient,
    HTTPRequest,
    HTTPResponse,
    ImageRequest,
    ImageResult,
    MockTransport,
    UploadedAsset,
    is_jpeg,
)
from flowpipe.errors import APIError

from .builders import BASE, TOKEN, images_doc, make_jpeg, make_png

FUZZ = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)

junk_base64 = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=64).map(lambda b: base64.b64encode(b"\xff\xd8\xff" + b).decode()),
    st.binary(max_size=64).map(lambda b: base64.b64encode(b + b"\xff\xd9").decode()),
    st.integers(0, 3_000_000).map(lambda n: "A" * n),  # huge strings
)

IMAGE_PATHS: list[tuple[Any, ...]] = [
    ("imagePanels",),
    ("imagePanels", 0),
    ("imagePanels", 0, "generatedImages"),
    ("imagePanels", 0, "generatedImages", 0),
    ("imagePanels", 0, "generatedImages", 0, "encodedImage"),
    ("imagePanels", 0, "generatedImages", 0, "seed"),
    ("imagePanels", 0, "generatedImages", 0, "mediaGenerationId"),
    ("imagePanels", 0, "generatedImages", 0, "mediaGenerationId", "mediaGenerationId"),
    ("imagePanels", 0, "generatedImages", 0, "modelNameType"),
    ("imagePanels", 0, "generatedImages", 0, "aspectRatio"),
    ("imagePanels", 0, "generatedImages", 0, "prompt"),
]
BASE_IMAGES = images_doc(count=1)
BASE_ASSET = {"mediaGenerationId": {"mediaGenerationId": "m"}, "width": 4, "height": 4}


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(IMAGE_PATHS))
    value = draw(junk_base64 if path[-1] == "encodedImage" else json_values)
    return json.dumps(_replace(BASE_IMAGES, path, value)).encode()


@st.composite
def mutated_small(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = draw(
        st.sampled_from([BASE_ASSET, {"a@b.c": {"health": "OK"}}, {"health": "OK"}])
    )
    key = draw(st.sampled_from(sorted(doc)))
    return json.dumps(_replace(doc, (key,), draw(json_values))).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_images(),
    mutated_small(),
    st.just(json.dumps(BASE_IMAGES).encode()),
    st.just(b"[" * 50_000),
    st.just(b'{"error": {"details": "nope"}}'),
)

statuses = st.one_of(
    st.sampled_from([200, 201, 204, 400, 401, 402, 403, 404, 429, 500, 503, 596]),
    st.integers(100, 999),
)
headers = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3)

failures = st.sampled_from(
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("Response payload is not completed"),
        aiohttp.ClientConnectionError("boom"),
        aiohttp.http_exceptions.ContentLengthError("short"),
        aiohttp.ClientConnectorError.__new__(aiohttp.ClientConnectorError),
        ConnectionResetError(104, "reset"),
        BrokenPipeError(32, "pipe"),
        TimeoutError(),
        EOFError(),
    ]
)

CALLS = ["generate", "upload", "accounts", "account"]


async def _call(name: str, transport: MockTransport) -> object:
    async with FlowClient(base_url=BASE, token=TOKEN, transport=transport) as client:
        if name == "generate":
            return await client.generate(ImageRequest("fuzz", model="imagen-4"))
        if name == "upload":
            return await client.upload_asset("a@b.c", make_png(), "image/png")
        if name == "accounts":
            return await client.accounts()
        return await client.account("a@b.c")


def _check_result(name: str, result: object) -> None:
    if name == "generate":
        assert isinstance(result, ImageResult) and result.images
        assert all(is_jpeg(image.data) for image in result.images)
    elif name == "upload":
        assert isinstance(result, UploadedAsset) and result.width > 0
    elif name == "accounts":
        assert isinstance(result, dict)
        assert all(isinstance(v, AccountInfo) for v in result.values())
    else:
        assert isinstance(result, AccountInfo)


def _run(name: str, transport: MockTransport) -> None:
    try:
        result = asyncio.run(_call(name, transport))
    except APIError as error:
        assert type(error) is not APIError, "always a named subclass"
        assert TOKEN not in str(error) and TOKEN not in repr(error)
        return
    _check_result(name, result)


@FUZZ
@given(name=st.sampled_from(CALLS), status=statuses, head=headers, body=bodies)
def test_any_answer_ends_in_result_or_named_error(
    name: str, status: int, head: dict[str, str], body: bytes
) -> None:
    _run(name, MockTransport(lambda r: HTTPResponse(status, head, body)))


@FUZZ
@given(name=st.sampled_from(CALLS), failure=failures)
def test_any_transport_failure_is_a_named_error(name: str, failure: BaseException) -> None:
    def handler(request: HTTPRequest) -> HTTPResponse:
        raise failure

    _run(name, MockTransport(handler))


def test_the_fuzzer_reaches_success() -> None:
    """The unmutated page body parses: the fuzz test is not all-errors by construction."""
    transport = MockTransport(lambda r: HTTPResponse(200, {}, json.dumps(BASE_IMAGES).encode()))
    result = asyncio.run(_call("generate", transport))
    assert isinstance(result, ImageResult) and result.images[0].data == make_jpeg()
