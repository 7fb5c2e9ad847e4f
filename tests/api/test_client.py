"""FlowClient through a MockTransport: bodies, headers, checks, mapping, redaction."""

from __future__ import annotations

import asyncio
import json
import logging
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flowpipe.api import (
    DEFAULT_BASE_URL,
    MAX_UPLOAD_BYTES,
    USER_AGENT,
    AiohttpTransport,
    FlowClient,
    HTTPRequest,
    HTTPResponse,
    ImageRequest,
    Timeouts,
    client_from_env,
)
from flowpipe.errors import (
    APIError,
    AuthError,
    CapacityError,
    InvalidRequestError,
    ModerationError,
    ResponseError,
    SessionError,
    TransportError,
    UsageError,
)

from .builders import (
    BASE,
    TOKEN,
    MakeClient,
    google_error,
    images_doc,
    json_response,
    make_jpeg,
    make_png,
)

ASSET_OK = {
    "mediaGenerationId": {"mediaGenerationId": "user:1-email:2-image:3"},
    "width": 8,
    "height": 8,
}


async def test_generate_posts_json_with_page_names(make_client: MakeClient) -> None:
    client, transport = make_client(lambda r: json_response(200, images_doc(count=2)))
    request = ImageRequest(
        "A serene mountain",
        model="imagen-4",
        aspect_ratio="square",
        count=2,
        seed=7,
        context_references=("c1",),
    )
    result = await client.generate(request)
    assert len(result.images) == 2
    assert result.images[0].data == make_jpeg()
    [sent] = transport.requests
    assert (sent.method, sent.url) == ("POST", f"{BASE}/images")
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {
        "prompt": "A serene mountain",
        "model": "imagen-4",
        "aspectRatio": "square",
        "count": 2,
        "seed": 7,
        "contextReference_1": "c1",
    }
    assert sent.timeout == Timeouts().generate


@pytest.mark.parametrize("prompt", ["café ☕ 東京", "lone \ud800 surrogate"])
async def test_any_prompt_text_is_sent_as_json(make_client: MakeClient, prompt: str) -> None:
    client, transport = make_client(lambda r: json_response(200, images_doc(count=1)))
    await client.generate(ImageRequest(prompt))
    assert json.loads(transport.requests[0].body)["prompt"] == prompt


def test_user_agent_names_the_project_version() -> None:
    with open(Path(__file__).parents[2] / "pyproject.toml", "rb") as file:
        version = tomllib.load(file)["project"]["version"]
    assert f"flowpipe/{version}" == USER_AGENT


@pytest.mark.parametrize(
    ("call", "method", "path"),
    [
        pytest.param(lambda c: c.generate(ImageRequest("x")), "POST", "/images", id="generate"),
        pytest.param(lambda c: c.accounts(), "GET", "/accounts", id="accounts"),
        pytest.param(
            lambda c: c.account("jane@example.com"),
            "GET",
            "/accounts/jane@example.com",
            id="account",
        ),
        pytest.param(
            lambda c: c.upload_asset("jane@example.com", make_png(), "image/png"),
            "POST",
            "/assets/jane@example.com",
            id="upload",
        ),
    ],
)
async def test_every_call_sends_auth_and_user_agent(
    make_client: MakeClient, call: Any, method: str, path: str
) -> None:
    client, transport = make_client(lambda r: HTTPResponse(401, {}, b'{"error": "Unauthorized"}'))
    with pytest.raises(AuthError):
        await call(client)
    [sent] = transport.requests
    assert (sent.method, sent.url) == (method, BASE + path)
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["User-Agent"] == USER_AGENT


async def test_custom_user_agent_and_timeouts(make_client: MakeClient) -> None:
    timeouts = Timeouts(accounts=3.5)
    client, transport = make_client(
        lambda r: json_response(200, {}), user_agent="ci/1", timeouts=timeouts
    )
    assert await client.accounts() == {}
    assert transport.requests[0].headers["User-Agent"] == "ci/1"
    assert transport.requests[0].timeout == 3.5


async def test_email_in_path_is_quoted(make_client: MakeClient) -> None:
    client, transport = make_client(lambda r: json_response(200, {"health": "OK"}))
    await client.account("a b/c@example.com")
    assert transport.requests[0].url == f"{BASE}/accounts/a%20b%2Fc@example.com"


async def test_upload_sends_raw_bytes_with_type(make_client: MakeClient) -> None:
    client, transport = make_client(lambda r: json_response(200, ASSET_OK))
    data = make_jpeg()
    asset = await client.upload_asset("jane@example.com", data, "image/jpeg")
    assert asset.media_generation_id == "user:1-email:2-image:3"
    [sent] = transport.requests
    assert sent.body == data
    assert sent.headers["Content-Type"] == "image/jpeg"
    assert sent.timeout == Timeouts().upload


@pytest.mark.parametrize(
    ("data", "content_type", "problem"),
    [
        pytest.param(b"", "image/png", "empty", id="empty"),
        pytest.param(make_png(), "image/gif", "not image/png or image/jpeg", id="gif-type"),
        pytest.param(make_png(), "", "not image/png", id="no-type"),
        pytest.param(make_png(), "image/jpeg", "not a JPEG", id="png-bytes-as-jpeg"),
        pytest.param(b"GIF89a....", "image/png", "not a PNG", id="gif-bytes-as-png"),
        pytest.param(
            b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_UPLOAD_BYTES,
            "image/png",
            "more than the 20 MB",
            id="over-20MB",
        ),
    ],
)
async def test_bad_uploads_are_refused_before_sending(
    make_client: MakeClient, data: bytes, content_type: str, problem: str
) -> None:
    client, transport = make_client(lambda r: json_response(200, ASSET_OK))
    with pytest.raises(InvalidRequestError, match=problem) as caught:
        await client.upload_asset("jane@example.com", data, content_type)
    assert transport.requests == []
    assert caught.value.status is None


async def test_upload_of_exactly_20MB_is_sent(make_client: MakeClient) -> None:
    client, transport = make_client(lambda r: json_response(200, ASSET_OK))
    data = b"\xff\xd8\xff" + b"\x00" * (MAX_UPLOAD_BYTES - 3)
    await client.upload_asset("jane@example.com", data, "Image/JPEG; charset=binary")
    assert transport.requests[0].headers["Content-Type"] == "image/jpeg"


async def test_empty_email_is_refused_before_sending(make_client: MakeClient) -> None:
    client, transport = make_client(lambda r: json_response(200, {}))
    with pytest.raises(InvalidRequestError):
        await client.account(" ")
    assert transport.requests == []


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(
            json_response(
                400,
                google_error(
                    400,
                    "Request contains an invalid argument.",
                    "INVALID_ARGUMENT",
                    "PUBLIC_ERROR_UNSAFE_GENERATION",
                ),
            ),
            ModerationError,
            id="400-unsafe",
        ),
        pytest.param(
            json_response(
                503,
                google_error(
                    503, "Service temporarily unavailable.", "UNAVAILABLE", "SERVICE_UNAVAILABLE"
                ),
            ),
            CapacityError,
            id="503",
        ),
        pytest.param(
            json_response(596, {"error": "Failed to refresh session."}), SessionError, id="596"
        ),
        pytest.param(HTTPResponse(200, {}, b"<html>"), ResponseError, id="200-html"),
    ],
)
async def test_client_raises_mapped_errors(
    make_client: MakeClient, response: HTTPResponse, expected: type[APIError]
) -> None:
    client, _ = make_client(lambda r: response)
    with pytest.raises(expected) as caught:
        await client.generate(ImageRequest("A serene mountain landscape at dusk", model="imagen-4"))
    assert caught.value.status == response.status
    assert caught.value.request == "POST /images imagen-4 'A serene mountain lands…'"


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(aiohttp.ServerDisconnectedError(), id="disconnected"),
        pytest.param(aiohttp.ClientPayloadError("Response payload is not completed"), id="payload"),
        pytest.param(ConnectionResetError(104, "reset"), id="reset"),
        pytest.param(TimeoutError(), id="timeout"),
        pytest.param(
            aiohttp.ClientConnectorError.__new__(aiohttp.ClientConnectorError), id="connector-bare"
        ),
    ],
)
async def test_transport_exceptions_become_transport_error(
    make_client: MakeClient, exc: BaseException
) -> None:
    def handler(request: HTTPRequest) -> HTTPResponse:
        raise exc

    client, _ = make_client(handler)
    with pytest.raises(TransportError) as caught:
        await client.accounts()
    assert caught.value.__cause__ is exc
    assert caught.value.request == "GET /accounts"


async def test_hung_answer_times_out(make_client: MakeClient) -> None:
    async def handler(request: HTTPRequest) -> HTTPResponse:
        await asyncio.Event().wait()  # never answers
        raise AssertionError

    client, _ = make_client(handler, timeouts=Timeouts(accounts=0.01))
    with pytest.raises(TransportError, match=r"no answer within 0\.01 s") as caught:
        await client.accounts()
    assert caught.value.reason == "timeout"


async def test_cancellation_is_not_swallowed(make_client: MakeClient) -> None:
    started = asyncio.Event()

    async def handler(request: HTTPRequest) -> HTTPResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError

    client, _ = make_client(handler)
    task = asyncio.create_task(client.accounts())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_context_manager_closes_the_transport(make_client: MakeClient) -> None:
    client, transport = make_client(lambda r: json_response(200, {}))
    async with client as same:
        assert same is client
        await client.accounts()
    assert transport.closed


async def test_default_transport_is_one_shared_aiohttp_transport() -> None:
    client = FlowClient(base_url=BASE, token=TOKEN)
    transport = client._transport
    assert isinstance(transport, AiohttpTransport)
    await client.aclose()
    assert transport.closed


# -- the token is nowhere but the header -------------------------------------------------

ECHOING: list[Any] = [
    pytest.param(json_response(401, {"error": f"Bad token {TOKEN}"}), id="401-echo"),
    pytest.param(HTTPResponse(502, {}, f"<h1>proxy: Bearer {TOKEN}</h1>".encode()), id="502-text"),
    pytest.param(json_response(200, {"error": f"token {TOKEN} ok?"}), id="200-error-echo"),
    pytest.param(json_response(200, {TOKEN: {"health": 5}}), id="200-bad-account-key"),
    pytest.param(
        json_response(429, google_error(429, TOKEN, "RESOURCE_EXHAUSTED")), id="429-message-echo"
    ),
]


@pytest.mark.parametrize("response", ECHOING)
async def test_token_never_in_error_text_or_logs(
    make_client: MakeClient, response: HTTPResponse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flowpipe")
    client, _ = make_client(lambda r: response)
    with pytest.raises(APIError) as caught:
        if response.status == 200 and b"health" in response.body:
            await client.accounts()
        else:
            await client.generate(ImageRequest("x"))
    error = caught.value
    texts = [
        str(error),
        repr(error),
        error.message,
        str(error.reason),
        str(error.request),
        repr(error.body),
        str(error.hint),
        caplog.text,
    ]
    assert caplog.records, "the failure was logged"
    for text in texts:
        assert TOKEN not in text


async def test_token_not_in_repr_of_client_or_request(make_client: MakeClient) -> None:
    client, transport = make_client(lambda r: json_response(200, {}))
    await client.accounts()
    assert TOKEN not in repr(client)
    assert TOKEN not in str(client)
    assert TOKEN not in repr(transport.requests[0])
    assert "'Authorization': '***'" in repr(transport.requests[0])


async def test_success_is_logged_without_token(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flowpipe")
    client, _ = make_client(lambda r: json_response(200, images_doc(1)))
    await client.generate(ImageRequest(f"prompt mentioning {TOKEN}"))
    assert "POST /images" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("abc\r\nX-Evil: 1", id="header-injection"),
        pytest.param("has space", id="space"),
    ],
)
def test_unusable_tokens_are_refused_without_echo(token: str) -> None:
    with pytest.raises(UsageError) as caught:
        FlowClient(base_url=BASE, token=token)
    if token:
        assert token not in str(caught.value)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param(
            "http://127.0.0.1:8080/v1/google-flow/",
            "http://127.0.0.1:8080/v1/google-flow",
            id="trailing-slash",
        ),
        pytest.param(DEFAULT_BASE_URL, DEFAULT_BASE_URL, id="default"),
    ],
)
def test_base_url_normalised(given: str, kept: str) -> None:
    assert FlowClient(base_url=given, token=TOKEN).base_url == kept


@pytest.mark.parametrize("url", ["ftp://x", "api.useapi.net", "http://x/?q=1"])
def test_bad_base_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError):
        FlowClient(base_url=url, token=TOKEN)


# -- environment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "base"),
    [
        pytest.param({"USEAPI_TOKEN": TOKEN}, DEFAULT_BASE_URL, id="default-url"),
        pytest.param(
            {"USEAPI_TOKEN": TOKEN, "FLOWPIPE_API_URL": "http://127.0.0.1:9/v1/google-flow"},
            "http://127.0.0.1:9/v1/google-flow",
            id="url-from-env",
        ),
        pytest.param(
            {"USEAPI_TOKEN": TOKEN, "FLOWPIPE_API_URL": ""},
            DEFAULT_BASE_URL,
            id="empty-url-means-default",
        ),
    ],
)
async def test_client_from_env(env: dict[str, str], base: str) -> None:
    async with client_from_env(env) as client:
        assert client.base_url == base
        assert client._token == TOKEN


def test_client_from_env_without_token() -> None:
    with pytest.raises(UsageError, match="USEAPI_TOKEN is not set"):
        client_from_env({"FLOWPIPE_API_URL": DEFAULT_BASE_URL})


def test_client_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USEAPI_TOKEN", TOKEN)
    monkeypatch.setenv("FLOWPIPE_API_URL", "http://127.0.0.1:1/v1/google-flow")
    assert client_from_env().base_url == "http://127.0.0.1:1/v1/google-flow"


def test_public_names_are_sorted_and_complete() -> None:
    import flowpipe.api as api

    public = {name for name in vars(api) if not name.startswith("_")}
    modules = {
        "client", "errors", "fetch", "models", "responses", "secrets", "transport", "annotations"
    }
    assert set(api.__all__) == public - modules
    assert list(api.__all__) == sorted(api.__all__, key=lambda n: (not n.isupper(), n))
