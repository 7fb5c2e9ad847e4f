"""Every status on the API page maps to its named exception, with reason and hint."""

from __future__ import annotations

from typing import Any

import aiohttp
import aiohttp.http_exceptions
import pytest

from flowpipe import exitcodes
from flowpipe.api.errors import error_for_status, parse_error_body, transport_error
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
    StopRunError,
    TransportError,
    UnexpectedStatusError,
)

from .builders import google_error

PAGE_CASES: list[Any] = [
    pytest.param(
        400,
        {"error": "Model nano-banana supports maximum 4 context references"},
        InvalidRequestError,
        "Model nano-banana supports maximum 4 context references",
        id="400-plain-string",
    ),
    pytest.param(
        400,
        google_error(
            400,
            "Request contains an invalid argument.",
            "INVALID_ARGUMENT",
            "PUBLIC_ERROR_UNSAFE_GENERATION",
        ),
        ModerationError,
        "PUBLIC_ERROR_UNSAFE_GENERATION",
        id="400-unsafe-generation",
    ),
    pytest.param(
        400,
        google_error(
            400, "Request contains an invalid argument.", "INVALID_ARGUMENT", "SOMETHING_ELSE"
        ),
        InvalidRequestError,
        "SOMETHING_ELSE",
        id="400-google-other-reason",
    ),
    pytest.param(401, {"error": "Unauthorized"}, AuthError, "Unauthorized", id="401"),
    pytest.param(
        402,
        {"error": "Account has no subscription or subscription expired"},
        PaymentRequiredError,
        "Account has no subscription or subscription expired",
        id="402",
    ),
    pytest.param(
        403,
        {"error": "Unauthorized access to user:123 detected in reference user:123-email:x-image:y"},
        ForbiddenReferenceError,
        "Unauthorized access to user:123 detected in reference user:123-email:x-image:y",
        id="403",
    ),
    pytest.param(
        404,
        {"error": "Google Flow account jane@example.com not found"},
        AccountNotFoundError,
        "Google Flow account jane@example.com not found",
        id="404",
    ),
    pytest.param(
        429,
        google_error(
            429,
            "Resource has been exhausted (e.g. check quota).",
            "RESOURCE_EXHAUSTED",
            "PUBLIC_ERROR_USER_REQUESTS_THROTTLED",
        ),
        CapacityError,
        "PUBLIC_ERROR_USER_REQUESTS_THROTTLED",
        id="429",
    ),
    pytest.param(
        500,
        google_error(500, "Internal error encountered.", "INTERNAL"),
        ModerationError,
        "Internal error encountered.",
        id="500-moderated",
    ),
    pytest.param(
        503,
        google_error(503, "Service temporarily unavailable.", "UNAVAILABLE", "SERVICE_UNAVAILABLE"),
        CapacityError,
        "SERVICE_UNAVAILABLE",
        id="503",
    ),
    pytest.param(
        596,
        {"error": "Failed to refresh session."},
        SessionError,
        "Failed to refresh session.",
        id="596",
    ),
    pytest.param(418, {"error": "I'm a teapot"}, UnexpectedStatusError, "I'm a teapot", id="418"),
    pytest.param(302, {}, UnexpectedStatusError, None, id="302-redirect-not-followed"),
    pytest.param(502, None, UnexpectedStatusError, None, id="502-no-body"),
]


@pytest.mark.parametrize(("status", "doc", "expected", "reason"), PAGE_CASES)
def test_status_maps_to_named_error(
    status: int, doc: Any, expected: type[APIError], reason: str | None
) -> None:
    import json

    body = b"" if doc is None else json.dumps(doc).encode()
    error = error_for_status(status, body, request="POST /images imagen-4 'x'")
    assert type(error) is expected
    assert error.status == status
    assert error.reason == reason
    assert error.hint
    assert error.request == "POST /images imagen-4 'x'"
    assert str(error).startswith(f"HTTP {status}: POST /images imagen-4 'x': ")


@pytest.mark.parametrize(
    ("status", "stops"),
    [
        pytest.param(401, True, id="401-stops"),
        pytest.param(402, True, id="402-stops"),
        pytest.param(596, True, id="596-stops"),
        pytest.param(403, False, id="403-continues"),
        pytest.param(429, False, id="429-continues"),
    ],
)
def test_stop_statuses_are_stop_run_errors(status: int, stops: bool) -> None:
    error = error_for_status(status, b'{"error": "x"}', request="GET /accounts")
    assert isinstance(error, StopRunError) is stops
    assert (exitcodes.for_error(error) == 3) is stops


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        pytest.param(429, True, id="429"),
        pytest.param(503, True, id="503"),
        pytest.param(500, True, id="500"),
        pytest.param(400, False, id="400"),
        pytest.param(404, False, id="404"),
    ],
)
def test_retryable_flag_follows_the_runner_table(status: int, retryable: bool) -> None:
    assert error_for_status(status, b"", request="r").retryable is retryable


def test_session_error_hint_points_at_setup_google_flow() -> None:
    error = error_for_status(596, b'{"error": "Failed to refresh session."}', request="r")
    assert error.hint is not None
    assert "cookies" in error.hint
    assert "Setup Google Flow" in error.hint


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            b"<html><body>Bad   gateway</body></html>",
            "<html><body>Bad gateway</body></html>",
            id="html-text",
        ),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", "\ufffd\ufffd\x00garbage", id="not-utf8"),
        pytest.param(b'{"message": "edge says no"}', "edge says no", id="message-only"),
        pytest.param(b'{"error": {"code": 500}}', None, id="google-without-text"),
        pytest.param(b'{"error": {"status": "INTERNAL"}}', "INTERNAL", id="google-status-only"),
        pytest.param(b"[1, 2]", None, id="json-array"),
    ],
)
def test_reason_from_any_body(body: bytes, reason: str | None) -> None:
    assert parse_error_body(body)[1] == reason


def test_huge_reason_is_clipped() -> None:
    error = error_for_status(400, b'{"error": "' + b"x" * 100_000 + b'"}', request="r")
    assert error.reason is not None
    assert len(error.reason) <= 300
    assert error.body is None  # too big to keep


def test_scrub_hides_an_echoed_secret() -> None:
    body = b'{"error": "bad token sk-secret-value here"}'
    error = error_for_status(
        401, body, request="GET /accounts", scrub=lambda t: t.replace("sk-secret-value", "***")
    )
    assert "sk-secret-value" not in str(error)
    assert "sk-secret-value" not in repr(error.body)
    assert error.reason == "bad token *** here"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        pytest.param(TimeoutError(), "timeout", id="asyncio-timeout"),
        pytest.param(TimeoutError(), "timeout", id="asyncio-TimeoutError-alias"),
        pytest.param(aiohttp.ServerTimeoutError("read"), "timeout", id="server-timeout"),
        pytest.param(
            aiohttp.ClientPayloadError("Response payload is not completed"),
            "truncated body",
            id="payload",
        ),
        pytest.param(
            aiohttp.http_exceptions.ContentLengthError("short"),
            "truncated body",
            id="content-length",
        ),
        pytest.param(aiohttp.ServerDisconnectedError(), "server disconnected", id="disconnected"),
        pytest.param(
            ConnectionResetError(104, "Connection reset by peer"), "connection reset", id="reset"
        ),
        pytest.param(aiohttp.ClientOSError(32, "Broken pipe"), "ClientOSError", id="client-os"),
    ],
)
def test_transport_failures_become_transport_error(exc: BaseException, reason: str) -> None:
    error = transport_error(exc, request="POST /images imagen-4 'x'", timeout=2.5)
    assert isinstance(error, TransportError)
    assert error.status is None
    assert error.reason == reason
    assert error.retryable
    assert str(error).startswith("no response: POST /images imagen-4 'x': ")


def test_timeout_message_names_the_limit() -> None:
    assert "within 2.5 s" in transport_error(TimeoutError(), request="r", timeout=2.5).message
