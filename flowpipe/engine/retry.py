"""What to do after each kind of API error: the DESIGN table as code.

Pure functions of (error, what the node has tried so far), so the whole policy is
testable without a server, a clock or a limiter.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

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

__all__ = ["Action", "Attempts", "Decision", "RetryPolicy", "decide"]


class Action(enum.Enum):
    RETRY = "retry"  # same request again, after ``delay``
    SWITCH_MODEL = "switch-model"  # moderated too often: try the fallback model
    REUPLOAD = "re-upload"  # 403: upload the referenced bytes to this account again
    DROP_ACCOUNT = "drop-account"  # 404 or 596: this account is unusable; requeue
    STOP = "stop"  # 401, 402 (and 596 with no account left): send nothing more
    FAIL = "fail"  # give up on this node


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Limits and delays; delays are in API seconds (scaled by the run's time scale)."""

    capacity_delay: tuple[float, float] = (5.0, 10.0)
    max_capacity_retries: int = 200
    max_transport_retries: int = 10
    moderation_delay: tuple[float, float] = (0.5, 2.0)


@dataclass(slots=True)
class Attempts:
    """What one node has been through; the scheduler updates it, ``decide`` reads it."""

    sent: int = 0
    capacity: int = 0
    transport: int = 0
    moderation: int = 0
    switched: bool = False
    reuploaded: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay: float = 0.0


def decide(
    error: APIError,
    attempts: Attempts,
    *,
    policy: RetryPolicy,
    moderation_retries: int,
    can_switch: bool,
    rng: random.Random,
) -> Decision:
    """Map an error to an action, as DESIGN section 1's table says."""
    if isinstance(error, SessionError):
        return Decision(Action.DROP_ACCOUNT)
    if isinstance(error, StopRunError):
        return Decision(Action.STOP)
    if isinstance(error, AccountNotFoundError):
        return Decision(Action.DROP_ACCOUNT)
    if isinstance(error, ForbiddenReferenceError):
        return Decision(Action.FAIL if attempts.reuploaded else Action.REUPLOAD)
    if isinstance(error, CapacityError):
        if attempts.capacity >= policy.max_capacity_retries:
            return Decision(Action.FAIL)
        return Decision(Action.RETRY, rng.uniform(*policy.capacity_delay))
    if isinstance(error, TransportError | ResponseError):
        if attempts.transport >= policy.max_transport_retries:
            return Decision(Action.FAIL)
        return Decision(Action.RETRY, rng.uniform(*policy.capacity_delay))
    if isinstance(error, ModerationError):
        if attempts.moderation <= moderation_retries:
            return Decision(Action.RETRY, rng.uniform(*policy.moderation_delay))
        if can_switch and not attempts.switched:
            return Decision(Action.SWITCH_MODEL)
        return Decision(Action.FAIL)
    return Decision(Action.FAIL)
