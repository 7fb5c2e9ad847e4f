"""What to do after each kind of API error: the DESIGN table as code, used everywhere.

``decide`` is a pure function of (error kind, what has been tried so far), so the whole
policy is testable without a server, a clock or a limiter. Generations follow it node
by node (``attempt.NodeAttempt``); ``retrying`` applies the same policy to any other
call, such as ``GET /accounts`` when a run looks for its accounts.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from flowpipe.engine.classify import ErrorKind, classify
from flowpipe.engine.clock import RunClock
from flowpipe.errors import APIError

__all__ = ["Action", "Attempts", "Decision", "RetryPolicy", "decide", "retrying"]

T = TypeVar("T")


class Action(enum.Enum):
    RETRY = "retry"  # same request again, after ``delay``
    SWITCH_MODEL = "switch-model"  # moderated too often: try the fallback model
    REUPLOAD = "re-upload"  # 403: upload the referenced bytes to this account again
    DROP_ACCOUNT = "drop-account"  # 404 or 596: this account is unusable; requeue
    PAUSE = "pause"  # a 2026-07 quota: pause its account (or model, or all); requeue
    STOP = "stop"  # 401, 402 (and 596 with no account left): send nothing more
    FAIL = "fail"  # give up on this node


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Limits and delays; delays are in API seconds (the run's clock scales them).

    ``max_captcha_retries``: a refused captcha (2026-07) already cost the service its
    ``captchaRetry`` solves for that request, so a few more requests cover bad luck;
    a refusal that outlasts them is the account's standing with reCAPTCHA, and the
    node fails with the reason instead of spending more. ``max_pauses``: how often one
    node may be sent back by a quota pause before it fails (pauses themselves are
    bounded by ``max_wait``; this bounds a service that keeps answering
    ``no_eligible_account`` with short waits). ``max_bad_responses``: a 200 that cannot
    be read (``ResponseError``) was a billed generation, so it is bought again only
    this many times (a cut body that never arrived is a transport error instead).
    """

    capacity_delay: tuple[float, float] = (5.0, 10.0)
    max_capacity_retries: int = 200
    max_transport_retries: int = 10
    max_bad_responses: int = 1
    moderation_delay: tuple[float, float] = (0.5, 2.0)
    captcha_delay: tuple[float, float] = (2.0, 5.0)
    max_captcha_retries: int = 3
    max_pauses: int = 50
    max_lookups: int = 5  # tries of a call other than a generation (GET /accounts)


@dataclass(slots=True)
class Attempts:
    """What one call has been through; ``count`` updates it, ``decide`` reads it."""

    sent: int = 0
    capacity: int = 0
    transport: int = 0
    bad_responses: int = 0
    moderation: int = 0
    captcha: int = 0
    pauses: int = 0
    switched: bool = False
    reuploaded: bool = False

    def count(self, kind: ErrorKind) -> None:
        """Spend the budget that an error of ``kind`` draws on.

        A lost image URL spends the transport budget: like a cut body, the answer
        came but its image did not. A 200 that cannot be read spends its own, small one.
        """
        if kind is ErrorKind.CAPACITY:
            self.capacity += 1
        elif kind in (ErrorKind.TRANSPORT, ErrorKind.IMAGE_URL):
            self.transport += 1
        elif kind is ErrorKind.BAD_RESPONSE:
            self.bad_responses += 1
        elif kind is ErrorKind.MODERATED:
            self.moderation += 1
        elif kind is ErrorKind.CAPTCHA:
            self.captcha += 1
        elif kind.paused:
            self.pauses += 1


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
    kind = classify(error)
    if kind in (ErrorKind.BROKEN_ACCOUNT, ErrorKind.NO_ACCOUNT):
        return Decision(Action.DROP_ACCOUNT)
    if kind is ErrorKind.STOP:
        return Decision(Action.STOP)
    if kind.paused:  # no delay of its own: the pause keeps the account (or model) idle
        return Decision(Action.FAIL if attempts.pauses > policy.max_pauses else Action.PAUSE)
    if kind is ErrorKind.FORBIDDEN:
        return Decision(Action.FAIL if attempts.reuploaded else Action.REUPLOAD)
    if kind is ErrorKind.CAPACITY:
        if attempts.capacity >= policy.max_capacity_retries:
            return Decision(Action.FAIL)
        return Decision(Action.RETRY, rng.uniform(*policy.capacity_delay))
    if kind is ErrorKind.BAD_RESPONSE:
        if attempts.bad_responses > policy.max_bad_responses:
            return Decision(Action.FAIL)
        return Decision(Action.RETRY, rng.uniform(*policy.capacity_delay))
    if kind in (ErrorKind.TRANSPORT, ErrorKind.IMAGE_URL):
        if attempts.transport >= policy.max_transport_retries:
            return Decision(Action.FAIL)
        # A lost image URL says nothing about capacity: make the node again at once.
        delay = 0.0 if kind is ErrorKind.IMAGE_URL else rng.uniform(*policy.capacity_delay)
        return Decision(Action.RETRY, delay)
    if kind is ErrorKind.CAPTCHA:
        if attempts.captcha > policy.max_captcha_retries:
            return Decision(Action.FAIL)
        return Decision(Action.RETRY, rng.uniform(*policy.captcha_delay))
    if kind is ErrorKind.MODERATED:
        if attempts.moderation <= moderation_retries:
            return Decision(Action.RETRY, rng.uniform(*policy.moderation_delay))
        if can_switch and not attempts.switched:
            return Decision(Action.SWITCH_MODEL)
    return Decision(Action.FAIL)


async def retrying(
    call: Callable[[], Awaitable[T]], *, policy: RetryPolicy, clock: RunClock, rng: random.Random,
    stopped: Callable[[], bool] = lambda: False,
) -> T:
    """Await ``call()``, again after each error the policy retries, ``max_lookups`` tries.

    Anything the policy does not retry (a 401, a 596, the last try) is raised, and so is
    the last error once ``stopped()`` says the run is stopping (a Ctrl-C).
    """
    lookups = dataclasses.replace(
        policy, max_capacity_retries=policy.max_lookups, max_transport_retries=policy.max_lookups
    )
    attempts = Attempts()
    while True:
        try:
            return await call()
        except APIError as exc:
            attempts.count(classify(exc))
            decision = decide(exc, attempts, policy=lookups, moderation_retries=0,
                              can_switch=False, rng=rng)
            if decision.action is not Action.RETRY or stopped():
                raise
            await clock.api_sleep(decision.delay)
            if stopped():
                raise
