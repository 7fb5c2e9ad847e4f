"""One classification of API errors: what an answer says, read by every part that reacts.

The limiter (was capacity exceeded?), a node's counters (which budget does this
spend?) and the retry policy (what next?) all start from ``classify``, so the
DESIGN's status table is read in exactly one place. The 2026-07 quota answers (a 429
with a reason) are pauses of an account, of a model on it or of the whole service,
never capacity: the limiter hears nothing of them and no window shrinks.
"""

from __future__ import annotations

import enum

from flowpipe.engine.limiter import Outcome
from flowpipe.errors import (
    AccountNotFoundError,
    APIError,
    CapacityError,
    CaptchaError,
    ForbiddenReferenceError,
    ImageURLError,
    ModerationError,
    QuotaError,
    ResponseError,
    SessionError,
    StopRunError,
    TransportError,
)

__all__ = ["ErrorKind", "classify"]


class ErrorKind(enum.Enum):
    """What an API error means for the run (DESIGN section 1)."""

    CAPACITY = "capacity"  # 429, 503: over the account's concurrency
    TRANSPORT = "transport"  # timeout, reset, truncated body: treated like capacity
    BAD_RESPONSE = "bad-response"  # a 2xx body that is not what the page documents
    MODERATED = "moderated"  # 400 PUBLIC_ERROR_UNSAFE_GENERATION, 500
    FORBIDDEN = "forbidden"  # 403: a reference owned by another account
    NO_ACCOUNT = "no-account"  # 404: the account is not configured
    BROKEN_ACCOUNT = "broken-account"  # 596: the account's session needs refreshing
    STOP = "stop"  # 401, 402: nothing more may be sent
    PAUSED_ACCOUNT = "paused-account"  # 2026-07 429 THROTTLED, QUOTA_REACHED: ~30 min
    PAUSED_MODEL = "paused-model"  # 2026-07 429 PER_MODEL_DAILY_QUOTA: until 00:00 UTC
    PAUSED_SERVICE = "paused-service"  # 2026-07 429 no_eligible_account: Retry-After
    CAPTCHA = "captcha"  # 2026-07 403 captcha_quality: the service's captcha was refused
    IMAGE_URL = "image-url"  # the generated image's signed URL is gone: make it again
    FATAL = "fatal"  # 400 with a plain error, undocumented statuses: the node fails

    @property
    def paused(self) -> bool:
        """A quota pause: of an account, a model on it, or every account."""
        return self in (ErrorKind.PAUSED_ACCOUNT, ErrorKind.PAUSED_MODEL,
                        ErrorKind.PAUSED_SERVICE)

    @property
    def outcome(self) -> Outcome:
        """What the answer tells the limiter about capacity.

        A pause says nothing about capacity (``ERROR`` only frees the slot); a refused
        captcha or a lost image URL came after the service took the request (``OK``).
        """
        if self in (ErrorKind.CAPACITY, ErrorKind.TRANSPORT):
            return Outcome.REJECTED
        if self.paused:
            return Outcome.ERROR
        return Outcome.OK


def classify(error: APIError) -> ErrorKind:
    """The kind of ``error``; subclasses are checked before their parents."""
    if isinstance(error, SessionError):
        return ErrorKind.BROKEN_ACCOUNT
    if isinstance(error, StopRunError):
        return ErrorKind.STOP
    if isinstance(error, QuotaError):
        return _PAUSES.get(error.scope, ErrorKind.PAUSED_ACCOUNT)
    for cls, kind in _KINDS:
        if isinstance(error, cls):
            return kind
    return ErrorKind.FATAL


_PAUSES = {
    "account": ErrorKind.PAUSED_ACCOUNT,
    "model": ErrorKind.PAUSED_MODEL,
    "service": ErrorKind.PAUSED_SERVICE,
}

_KINDS: tuple[tuple[type[APIError], ErrorKind], ...] = (
    (AccountNotFoundError, ErrorKind.NO_ACCOUNT),
    (CaptchaError, ErrorKind.CAPTCHA),  # a 403, but not a foreign reference
    (ImageURLError, ErrorKind.IMAGE_URL),
    (ForbiddenReferenceError, ErrorKind.FORBIDDEN),
    (CapacityError, ErrorKind.CAPACITY),
    (TransportError, ErrorKind.TRANSPORT),
    (ResponseError, ErrorKind.BAD_RESPONSE),
    (ModerationError, ErrorKind.MODERATED),
)
