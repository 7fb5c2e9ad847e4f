"""The one place where HTTP statuses and low-level failures become flowpipe errors.

``error_for_status`` reads an error answer (the API's plain ``{"error": "text"}`` or
Google's ``{"error": {"code", "message", "status", "details": [{"reason"}]}}``, or
anything else an edge proxy may send) and picks the exception the runner acts on.
``transport_error`` does the same for aiohttp errors, timeouts and resets. Every
text that reaches an exception first goes through ``scrub``, which hides the token.

Some answers mean different things in different dialects (``flowpipe.dialects``): a
429's reason is a capacity signal in 2025-11 but a pause of an account, of a model or
of every account in 2026-07; a 403 ``captcha_quality:...`` is a refused captcha.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import aiohttp.http_exceptions

from flowpipe.dialects import DEFAULT_DIALECT, RateReason, dialect, seconds_to_utc_midnight
from flowpipe.errors import (
    AccountNotFoundError,
    AccountPausedError,
    APIError,
    AuthError,
    CapacityError,
    CaptchaError,
    ForbiddenReferenceError,
    ImageURLError,
    InvalidRequestError,
    ModelQuotaError,
    ModerationError,
    NoEligibleAccountError,
    PaymentRequiredError,
    QuotaError,
    SessionError,
    TransportError,
    UnexpectedStatusError,
)

__all__ = [
    "QUOTA_CLASSES",
    "TRANSPORT_EXCEPTIONS",
    "UNSAFE_GENERATION",
    "Scrub",
    "error_for_status",
    "image_url_error",
    "parse_error_body",
    "retry_after",
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
    AccountPausedError: (
        "this account is out for about 30 minutes: send it nothing more until then and "
        "go on with the other accounts"
    ),
    ModelQuotaError: (
        "this model's daily quota on this account is used up until midnight UTC: use "
        "another model or account meanwhile"
    ),
    NoEligibleAccountError: "every account is out: wait as long as the answer says, then go on",
    CaptchaError: (
        "the service's reCAPTCHA was refused: retry a few times; captchaRetry (1-10) "
        "lets the service try harder per request"
    ),
    ImageURLError: "the image's signed URL expired or was refused: make the image again",
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
    AccountPausedError: "account paused",
    ModelQuotaError: "model quota reached",
    NoEligibleAccountError: "no eligible account",
    CaptchaError: "captcha refused",
}

#: Which exception a 2026-07 429 reason's scope raises.
QUOTA_CLASSES: dict[str, type[QuotaError]] = {
    "account": AccountPausedError,
    "model": ModelQuotaError,
    "service": NoEligibleAccountError,
}
MAX_PAUSE = 2 * 86400.0  # a Retry-After beyond two days is not believed


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
    status: int,
    body: bytes,
    *,
    request: str,
    scrub: Scrub = _identity,
    dialect_name: str = DEFAULT_DIALECT,
    headers: Mapping[str, str] | None = None,
    model: str | None = None,
) -> APIError:
    """The exception for a non-2xx answer, with reason, hint and request summary.

    ``dialect_name`` says how to read a 429's reason and a 403's text; ``headers``
    (lower-case names) give ``Retry-After`` and ``Date`` for pauses; ``model`` is the
    model the request named, kept on a ``ModelQuotaError``.
    """
    doc, reason, codes = parse_error_body(body, scrub=scrub)
    cls = _class_for(status, codes)
    spoken = dialect(dialect_name)
    extra: dict[str, Any] = {}
    if status == 429:
        code, meaning = spoken.rate_reason((*codes, *_plain_codes(doc)))
        if code is not None:
            cls = QUOTA_CLASSES[meaning.scope]
            reason = code if code not in (reason or "") else reason
            extra = {"pause": _pause(meaning, headers or {}, doc), "model": model}
    elif status == 403 and spoken.is_captcha_refusal(_plain_error(doc)):
        cls = CaptchaError
    title = TITLES[cls]
    if "pause" in extra:
        title = f"{title} for {_duration(extra['pause'])}"
    message = f"{title}: {reason}" if reason else title
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
        **extra,
    )


# -- 2026-07 quotas: what a 429 reason pauses, and for how long -----------------------


def _plain_error(doc: Any) -> str | None:
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, str) else None


def _plain_codes(doc: Any) -> tuple[str, ...]:
    """Reason codes outside ``details``: a plain ``error`` text's first word, a ``code``."""
    found: list[str] = []
    head = (_plain_error(doc) or "").split(":", 1)[0].split()
    if head:
        found.append(head[0])
    for holder in (doc, doc.get("error") if isinstance(doc, dict) else None):
        value = holder.get("code") if isinstance(holder, dict) else None
        if isinstance(value, str):
            found.append(value)
    return tuple(found)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and 0 <= seconds <= MAX_PAUSE else None


def _server_now(headers: Mapping[str, str]) -> dt.datetime:
    """The answer's ``Date`` (the service's clock: the simulator's API time), else ours."""
    text = headers.get("date")
    if text:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return when
    return dt.datetime.now(dt.UTC)


def retry_after(headers: Mapping[str, str], doc: Any = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or a body ``retryAfter``."""
    text = headers.get("retry-after", "").strip()
    if text:
        seconds = _seconds(text)
        if seconds is None:
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None and when.tzinfo is not None:
                seconds = _seconds(max(0.0, (when - _server_now(headers)).total_seconds()))
        if seconds is not None:
            return seconds
    for holder in (doc, doc.get("error") if isinstance(doc, dict) else None):
        if isinstance(holder, dict) and "retryAfter" in holder:
            seconds = _seconds(holder["retryAfter"])
            if seconds is not None:
                return seconds
    return None


def _pause(meaning: RateReason, headers: Mapping[str, str], doc: Any) -> float:
    """API seconds the reason's scope stays out: Retry-After, else the dialect's figure."""
    given = retry_after(headers, doc)
    if given is not None:
        return given
    if meaning.until_utc_midnight:
        return seconds_to_utc_midnight(_server_now(headers))
    return meaning.pause if meaning.pause is not None else 0.0


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def image_url_error(
    reason: str, *, request: str, status: int | None = None, scrub: Scrub = _identity
) -> ImageURLError:
    """The ``ImageURLError`` for a signed image URL that expired, was refused or failed."""
    return ImageURLError(
        scrub(f"cannot read the generated image: {reason}"),
        status=status,
        reason=scrub(reason),
        hint=HINTS[ImageURLError],
        request=scrub(request),
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
