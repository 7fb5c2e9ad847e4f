"""What tests/api/test_fuzz.py leaves open: the status table, secrets in bodies, the retry path.

test_fuzz.py already shows that any status, headers and body end in a result or a
named APIError. These properties add, through a MockTransport into a full
``FlowClient.generate`` call: the class matches DESIGN section 1's table for every
body; a body that echoes the token never brings any piece of it back; and the retry
policy has an answer for every error the client can raise.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowpipe.api import FlowClient, HTTPResponse, ImageRequest, MockTransport
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
    SessionError,
    UnexpectedStatusError,
)

BASE = "https://api.example.test/v1/google-flow"
TOKEN = "sk-fuzz-Zq8v3LmN0pRt5WxY2"
FUZZ = settings(
    max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

TABLE: dict[int, tuple[type[APIError], ...]] = {
    400: (InvalidRequestError, ModerationError),  # which one depends on the body
    401: (AuthError,),
    402: (PaymentRequiredError,),
    403: (ForbiddenReferenceError,),
    404: (AccountNotFoundError,),
    429: (CapacityError,),
    500: (ModerationError,),
    503: (CapacityError,),
    596: (SessionError,),
}

error_bodies = st.one_of(
    st.binary(max_size=120),
    st.text(max_size=400).map(lambda t: json.dumps({"error": t}).encode()),
    st.text(max_size=60).map(
        lambda t: json.dumps(
            {"error": {"code": 400, "message": t, "status": "INVALID_ARGUMENT",
                       "details": [{"reason": "PUBLIC_ERROR_UNSAFE_GENERATION"}]}}
        ).encode()
    ),
    st.just(b"<html><body>502 Bad Gateway</body></html>"),
)
headers = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3)


def _generate(status: int, head: dict[str, str], body: bytes) -> APIError:
    async def call() -> None:
        transport = MockTransport(lambda request: HTTPResponse(status, head, body))
        async with FlowClient(base_url=BASE, token=TOKEN, transport=transport) as client:
            await client.generate(ImageRequest("fuzz", model="imagen-4"))

    with pytest.raises(APIError) as caught:
        asyncio.run(call())
    return caught.value


@FUZZ
@given(
    status=st.sampled_from(sorted(TABLE)) | st.integers(300, 999).filter(lambda s: s not in TABLE),
    head=headers,
    body=error_bodies,
)
def test_status_maps_to_the_class_the_table_names(
    status: int, head: dict[str, str], body: bytes
) -> None:
    error = _generate(status, head, body)
    assert isinstance(error, TABLE.get(status, (UnexpectedStatusError,)))
    assert error.status == status
    unsafe = b"PUBLIC_ERROR_UNSAFE_GENERATION" in body and body.startswith(b"{")
    if status == 400 and isinstance(error, ModerationError):
        assert unsafe


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(len(text) - size + 1)]


def _assert_no_token_piece(error: APIError) -> None:
    texts = [str(error), repr(error), error.message, error.reason or "",
             error.request or "", json.dumps(error.body, default=str)]
    for text in texts:
        leaked = [piece for piece in _pieces(TOKEN) if piece in text]
        assert not leaked, (leaked, text)


@FUZZ
@given(
    status=st.sampled_from(sorted(TABLE)),
    before=st.text(max_size=320),
    after=st.text(max_size=40),
    shape=st.sampled_from(["plain", "google", "raw"]),
)
def test_echoed_token_leaves_no_whole_token_in_the_error(
    status: int, before: str, after: str, shape: str
) -> None:
    echoed = before + TOKEN + after
    if shape == "plain":
        body = json.dumps({"error": echoed}).encode()
    elif shape == "google":
        body = json.dumps({"error": {"code": status, "message": echoed}}).encode()
    else:
        body = echoed.encode()
    error = _generate(status, {}, body)
    for text in (str(error), repr(error), error.reason or "", json.dumps(error.body, default=str)):
        assert TOKEN not in text


def test_token_cut_by_the_reason_clip_leaves_no_piece_of_it() -> None:
    body = json.dumps({"error": "x" * 285 + " " + TOKEN}).encode()
    _assert_no_token_piece(_generate(400, {}, body))


@FUZZ
@given(status=st.integers(300, 999), body=error_bodies, sent=st.integers(0, 300),
       reuploaded=st.booleans(), switched=st.booleans(), can_switch=st.booleans())
def test_every_client_error_has_a_retry_decision(
    status: int, body: bytes, sent: int, reuploaded: bool, switched: bool, can_switch: bool
) -> None:
    error = _generate(status, {}, body)
    attempts = Attempts(sent=sent, capacity=sent, transport=sent, moderation=sent,
                        switched=switched, reuploaded=reuploaded)
    policy = RetryPolicy()
    decision = decide(error, attempts, policy=policy, moderation_retries=2,
                      can_switch=can_switch, rng=random.Random(sent))
    assert isinstance(decision.action, Action)
    if decision.action is Action.RETRY:
        low = min(policy.capacity_delay[0], policy.moderation_delay[0])
        assert low <= decision.delay <= policy.capacity_delay[1]
    else:
        assert decision.delay == 0.0
    if isinstance(error, CapacityError) and sent < policy.max_capacity_retries:
        assert decision.action is Action.RETRY  # capacity is never a failure early on
    if isinstance(error, AuthError | PaymentRequiredError):
        assert decision.action is Action.STOP
