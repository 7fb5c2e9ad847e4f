"""The API page's response bodies, word for word, and the answer carrier for handlers.

Every error the simulator sends is built here so the texts live in one place and
tests compare against the same constants the page shows.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = [
    "MODERATED_500",
    "REJECTED_429",
    "REJECTED_503",
    "SESSION_596",
    "UNAUTHORIZED",
    "UNSAFE_400",
    "Answer",
    "account_not_found",
    "captcha_refused",
    "error",
    "json_response",
    "no_credits",
    "no_eligible_account",
    "rejected_429",
    "unauthorized_reference",
]

UNAUTHORIZED: dict[str, Any] = {"error": "Unauthorized"}
SESSION_596: dict[str, Any] = {"error": "Failed to refresh session."}

UNSAFE_400: dict[str, Any] = {
    "error": {
        "code": 400,
        "message": "Request contains an invalid argument.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "PUBLIC_ERROR_UNSAFE_GENERATION",
            }
        ],
    }
}

REJECTED_429: dict[str, Any] = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "PUBLIC_ERROR_USER_REQUESTS_THROTTLED",
            }
        ],
    }
}

MODERATED_500: dict[str, Any] = {
    "error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}
}

REJECTED_503: dict[str, Any] = {
    "error": {
        "code": 503,
        "message": "Service temporarily unavailable.",
        "status": "UNAVAILABLE",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SERVICE_UNAVAILABLE",
            }
        ],
    }
}


def error(text: str) -> dict[str, Any]:
    """A useapi.net error: ``{"error": "text"}``."""
    return {"error": text}


def no_credits() -> dict[str, Any]:
    """402 body."""
    return error("Account has no subscription or subscription expired")


def account_not_found(email: str) -> dict[str, Any]:
    """404 body for an account the simulator does not know."""
    return error(f"Google Flow account {email} not found")


def unauthorized_reference(owner: str, reference: str) -> dict[str, Any]:
    """403 body; ``owner`` is the ``user:N`` part of the reference, as on the page."""
    return error(f"Unauthorized access to {owner} detected in reference {reference}")


def rejected_429(reason: str | None) -> dict[str, Any]:
    """A Google 429 body with ``reason`` in its details, or none (2026-07's plain capacity)."""
    if reason == REJECTED_429["error"]["details"][0]["reason"]:
        return REJECTED_429
    body: dict[str, Any] = {
        "error": {k: v for k, v in REJECTED_429["error"].items() if k != "details"}
    }
    if reason is not None:
        detail = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}
        body["error"]["details"] = [detail]
    return body


def no_eligible_account(retry_after: int) -> dict[str, Any]:
    """429 when every account is out: the code, and the seconds to wait."""
    return {"error": "no_eligible_account", "retryAfter": retry_after}


def captcha_refused(tries: int) -> dict[str, Any]:
    """403 when the service's reCAPTCHA was refused on every try."""
    return error(f"captcha_quality: the reCAPTCHA score was too low on all {tries} attempts")


def json_response(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with the status and body given (no extra fields)."""
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json",
        headers=headers,
    )


class Answer(Exception):
    """Raised inside a handler to send ``status``, ``body`` (and ``headers``) at once.

    Never escapes the simulator: the handler wrapper turns it into a response.
    """

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers
