"""The DESIGN status table, row by row, as ``decide`` applies it."""

from __future__ import annotations

import random

import pytest

from flowpipe.engine.classify import classify
from flowpipe.engine.retry import Action, Attempts, RetryPolicy, decide
from flowpipe.errors import (
    AccountNotFoundError,
    APIError,
    AuthError,
    CapacityError,
    ForbiddenReferenceError,
    InvalidRequestError,
    ModerationError,
    PaymentRequiredError,
    ResponseError,
    SessionError,
    TransportError,
    UnexpectedStatusError,
)

POLICY = RetryPolicy()


def _decide(error: APIError, attempts: Attempts | None = None, *, can_switch: bool = True):
    return decide(
        error,
        attempts or Attempts(),
        policy=POLICY,
        moderation_retries=2,
        can_switch=can_switch,
        rng=random.Random(1),
    )


@pytest.mark.parametrize(
    ("error", "action"),
    [
        pytest.param(InvalidRequestError("bad", status=400), Action.FAIL, id="400-plain"),
        pytest.param(AuthError("x", status=401), Action.STOP, id="401"),
        pytest.param(PaymentRequiredError("x", status=402), Action.STOP, id="402"),
        pytest.param(ForbiddenReferenceError("x", status=403), Action.REUPLOAD, id="403"),
        pytest.param(AccountNotFoundError("x", status=404), Action.DROP_ACCOUNT, id="404"),
        pytest.param(SessionError("x", status=596), Action.DROP_ACCOUNT, id="596"),
        pytest.param(UnexpectedStatusError("x", status=418), Action.FAIL, id="418"),
    ],
)
def test_one_shot_statuses(error: APIError, action: Action) -> None:
    assert _decide(error).action is action


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(CapacityError("x", status=429), id="429"),
        pytest.param(CapacityError("x", status=503), id="503"),
        pytest.param(TransportError("reset"), id="reset"),
        pytest.param(ResponseError("truncated", status=200), id="bad-body"),
    ],
)
def test_capacity_like_errors_wait_five_to_ten_api_seconds(error: APIError) -> None:
    decision = _decide(error)
    assert decision.action is Action.RETRY
    assert 5.0 <= decision.delay <= 10.0


def test_capacity_retries_are_bounded() -> None:
    spent = Attempts(capacity=POLICY.max_capacity_retries)
    assert _decide(CapacityError("x", status=429), spent).action is Action.FAIL


def test_an_unreadable_200_is_bought_again_once_apart_from_the_transport_budget() -> None:
    """Each unreadable 200 was billed: it gets a budget of its own, not the 10 resets."""
    attempts, error = Attempts(), ResponseError("garbled", status=200)
    actions = []
    for _ in range(3):
        attempts.count(classify(error))
        actions.append(_decide(error, attempts).action)
    assert actions[:2] == [Action.RETRY, Action.FAIL]
    assert attempts.transport == 0


def test_second_403_fails() -> None:
    assert _decide(ForbiddenReferenceError("x"), Attempts(reuploaded=True)).action is Action.FAIL


def test_moderation_retries_twice_then_switches_once_then_fails() -> None:
    err = ModerationError("x", status=500)
    seen = []
    att = Attempts()
    for _ in range(8):
        att.moderation += 1
        action = _decide(err, att).action
        seen.append(action)
        if action is Action.SWITCH_MODEL:
            att.switched, att.moderation = True, 0
        if action is Action.FAIL:
            break
    assert seen == [
        Action.RETRY, Action.RETRY, Action.SWITCH_MODEL,
        Action.RETRY, Action.RETRY, Action.FAIL,
    ]


def test_moderation_without_fallback_fails_after_retries() -> None:
    att = Attempts(moderation=3)
    assert _decide(ModerationError("x"), att, can_switch=False).action is Action.FAIL
