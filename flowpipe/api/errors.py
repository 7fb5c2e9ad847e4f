"""The one place where HTTP statuses and low-level failures become flowpipe errors.

``error_for_status`` reads an error answer (the API's plain ``{"error": "text"}`` or
Google's ``{"error": {"code", "message", "status", "details": [{"reason"}]}}``, or
anything else an edge proxy may send) and picks the exception the runner acts on.
``transport_error`` does the same for aiohttp errors, timeouts and resets. Every
text that reaches an exception first goes through ``scrub``, which hides the token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import aiohttp.http_exceptions

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
    UnexpectedStatusError,
)

__all__ = [
    "TRANSPORT_EXCEPTIONS",
    "UNSAFE_GENERATION",
    "Scrub",
    "error_for_status",
    "parse_error_body",
    "transport_error",
]

UNSAFE_GENERATION = "PUBLIC_ERROR_UNSAFE_GENERATION"
REASON_LIMIT = 300  # an edge proxy may answer with a whole HTML page
BODY_LIMIT = 64 * 1024

#: Everything a transport may raise when the network or the server lets us down.
TRANSPORT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,  # ClientPayloadError, ServerDisconnectedError, connector errors
    aiohttp.http_exceptions.HttpProcessingError,  # ContentLengthError, bad status lines
    TimeoutError,  # asyncio.TimeoutError is the same class on 3.11
    OSError,  # ConnectionResetError, BrokenPipeError
    EOFError,
)

Scrub = Callable[[str], str]

HINTS: dict[type[APIError], str] = {
    InvalidRequestError: (
        "the API rejected the request as invalid; recipe validation should have caught "
        "this, so please report it with the recipe"
    ),
    ModerationError: (
        "moderated: retry (decisions vary between attempts), switch between imagen-4 and "
        "nano-banana, or change the prompt or references"
    ),
    AuthError: "check USEAPI_TOKEN: it must be a valid useapi.net API token",
    PaymentRequiredError: "renew the useapi.net subscription or add credits",
    ForbiddenReferenceError: (
        "the reference belongs to another account: upload the image to this account "
        "and use the new mediaGenerationId"
    ),
    AccountNotFoundError: (
        "configure the account at useapi.net (Setup Google Flow) or stop using it"
    ),
    CapacityError: "the API is at its concurrency limit: wait 5-10 s and retry",
    SessionError: (
        "refresh the account's Google cookies as described in useapi.net's "
        "'Setup Google Flow', then run again"
    ),
    UnexpectedStatusError: "the API page does not document this status; retry later",
    TransportError: "no usable answer: wait 5-10 s and retry; check the network if it persists",
}

TITLES: dict[type[APIError], str] = {
    InvalidRequestError: "invalid request",
    ModerationError: "content moderated",
    AuthError: "unauthorized",
    PaymentRequiredError: "payment required",
    ForbiddenReferenceError: "reference owned by another account",
    AccountNotFoundError: "account not found",
    CapacityError: "API at capacity",
    SessionError: "Google session refresh failed",
    UnexpectedStatusError: "unexpected status",
}


def _identity(text: str) -> str:
    return text


def _clip_text(text: str, limit: int = REASON_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_error_body(
    body: bytes, *, scrub: Scrub = _identity
) -> tuple[Any, str | None, tuple[str, ...]]:
    """Read an error body: (parsed JSON or None, reason text, ``details[].reason`` codes).

    The reason is the plain ``error`` string, else the first details code, else the
    Google ``message``, else the start of a non-JSON body. Never raises. Texts are
    scrubbed before they are clipped, so a clip cannot cut a secret in half.
    """

    def _clip(text: str) -> str:
        return _clip_text(scrub(text))

    try:
        doc: Any = json.loads(body)
    except (ValueError, RecursionError):
        text = body[:BODY_LIMIT].decode("utf-8", "replace").strip()
        return None, (_clip(text) or None), ()
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, str):
        return doc, (_clip(error) or None), ()
    if isinstance(error, dict):
        details = error.get("details")
        codes = tuple(
            item["reason"]
            for item in (details if isinstance(details, list) else [])
            if isinstance(item, dict) and isinstance(item.get("reason"), str)
        )
        for candidate in (*codes, error.get("message"), error.get("status")):
            if isinstance(candidate, str) and candidate.strip():
                return doc, _clip(candidate), codes
        return doc, None, codes
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return doc, (_clip(doc["message"]) or None), ()
    return doc, None, ()


def _class_for(status: int, codes: tuple[str, ...]) -> type[APIError]:
    if status == 400:
        return ModerationError if UNSAFE_GENERATION in codes else InvalidRequestError
    if status == 500:
        return ModerationError
    if status in (429, 503):
        return CapacityError
    known: dict[int, type[APIError]] = {
        401: AuthError,
        402: PaymentRequiredError,
        403: ForbiddenReferenceError,
        404: AccountNotFoundError,
        596: SessionError,
    }
    return known.get(status, UnexpectedStatusError)


def error_for_status(
    status: int, body: bytes, *, request: str, scrub: Scrub = _identity
) -> APIError:
    """The exception for a non-2xx answer, with reason, hint and request summary."""
    doc, reason, codes = parse_error_body(body, scrub=scrub)
    cls = _class_for(status, codes)
    message = f"{TITLES[cls]}: {reason}" if reason else TITLES[cls]
    raw = body[:BODY_LIMIT].decode("utf-8", "replace")
    # Keep the parsed body for callers unless it is huge or echoes a secret.
    kept: Any = doc if doc is not None and len(body) <= BODY_LIMIT else None
    if scrub(raw) != raw:
        kept = scrub(raw)
    return cls(
        message,
        status=status,
        reason=reason,
        hint=HINTS[cls],
        request=scrub(request),
        body=kept,
    )


def _describe_failure(exc: BaseException, timeout: float | None) -> tuple[str, str]:
    """(message, reason code) for a low-level failure."""
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        after = f" within {timeout:g} s" if timeout is not None else ""
        return f"no answer{after}", "timeout"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return "the server did not answer in time", "timeout"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.http_exceptions.HttpProcessingError):
        return "the response body was cut short or malformed", "truncated body"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before answering", "server disconnected"
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset", "connection reset"
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return "could not connect", "connect failed"
    return "the request failed", type(exc).__name__


def transport_error(
    exc: BaseException, *, request: str, timeout: float | None = None, scrub: Scrub = _identity
) -> TransportError:
    """The ``TransportError`` for a timeout, reset, truncated body or other network failure."""
    message, reason = _describe_failure(exc, timeout)
    try:
        detail = _clip_text(scrub(str(exc)), 200)
    except Exception:
        detail = ""
    if detail:
        message = f"{message} ({type(exc).__name__}: {detail})"
    return TransportError(
        scrub(message),
        status=None,
        reason=reason,
        hint=HINTS[TransportError],
        request=scrub(request),
    )
