"""One classification of API errors: what an answer says, read by every part that reacts.

The limiter (was capacity exceeded?), a node's counters (which budget does this
spend?) and the retry policy (what next?) all start from ``classify``, so the
DESIGN's status table is read in exactly one place.
"""

from __future__ import annotations

import enum

from flowpipe.engine.limiter import Outcome
from flowpipe.errors import (
    AccountNotFoundError,
    APIError,
    CapacityError,
    ForbiddenReferenceError,
    ModerationError,
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
    FATAL = "fatal"  # 400 with a plain error, undocumented statuses: the node fails

    @property
    def outcome(self) -> Outcome:
        """What the answer tells the limiter about capacity."""
        if self in (ErrorKind.CAPACITY, ErrorKind.TRANSPORT):
            return Outcome.REJECTED
        return Outcome.OK


def classify(error: APIError) -> ErrorKind:
    """The kind of ``error``; subclasses are checked before their parents."""
    if isinstance(error, SessionError):
        return ErrorKind.BROKEN_ACCOUNT
    if isinstance(error, StopRunError):
        return ErrorKind.STOP
    for cls, kind in _KINDS:
        if isinstance(error, cls):
            return kind
    return ErrorKind.FATAL


_KINDS: tuple[tuple[type[APIError], ErrorKind], ...] = (
    (AccountNotFoundError, ErrorKind.NO_ACCOUNT),
    (ForbiddenReferenceError, ErrorKind.FORBIDDEN),
    (CapacityError, ErrorKind.CAPACITY),
    (TransportError, ErrorKind.TRANSPORT),
    (ResponseError, ErrorKind.BAD_RESPONSE),
    (ModerationError, ErrorKind.MODERATED),
)
