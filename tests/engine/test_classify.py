"""One reading of an API error, and what the limiter hears from it."""

from __future__ import annotations

import pytest

from flowpipe.engine.classify import ErrorKind, classify
from flowpipe.engine.limiter import Outcome
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


@pytest.mark.parametrize(
    ("error", "kind", "outcome"),
    [
        pytest.param(CapacityError("x", status=429), ErrorKind.CAPACITY, Outcome.REJECTED,
                     id="429"),
        pytest.param(TransportError("reset"), ErrorKind.TRANSPORT, Outcome.REJECTED,
                     id="reset"),
        pytest.param(ResponseError("truncated", status=200), ErrorKind.BAD_RESPONSE,
                     Outcome.OK, id="bad-body"),
        pytest.param(ModerationError("x", status=500), ErrorKind.MODERATED, Outcome.OK,
                     id="500"),
        pytest.param(ForbiddenReferenceError("x", status=403), ErrorKind.FORBIDDEN, Outcome.OK,
                     id="403"),
        pytest.param(AccountNotFoundError("x", status=404), ErrorKind.NO_ACCOUNT, Outcome.OK,
                     id="404"),
        pytest.param(SessionError("x", status=596), ErrorKind.BROKEN_ACCOUNT, Outcome.OK,
                     id="596"),
        pytest.param(AuthError("x", status=401), ErrorKind.STOP, Outcome.OK, id="401"),
        pytest.param(PaymentRequiredError("x", status=402), ErrorKind.STOP, Outcome.OK,
                     id="402"),
        pytest.param(InvalidRequestError("x", status=400), ErrorKind.FATAL, Outcome.OK,
                     id="400"),
        pytest.param(UnexpectedStatusError("x", status=418), ErrorKind.FATAL, Outcome.OK,
                     id="418"),
    ],
)
def test_every_status_has_one_kind(error: APIError, kind: ErrorKind, outcome: Outcome) -> None:
    assert classify(error) is kind
    assert kind.outcome is outcome
