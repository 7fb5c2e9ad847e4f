"""The 2026-07 answers one by one: their kind, the limiter's verdict, the decision, the pause.

Whole runs with them are in test_virtual_runs_2026.py; these are the pure pieces.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time

import pytest

from flowpipe.dialects import NO_ELIGIBLE_ACCOUNT, USER_REQUESTS_THROTTLED
from flowpipe.engine.accounts import AccountPool
from flowpipe.engine.classify import ErrorKind, classify
from flowpipe.engine.clock import FakeClock, RunClock, VirtualClock
from flowpipe.engine.limiter import Outcome
from flowpipe.engine.pauses import Pauses, describe_pauses
from flowpipe.engine.ready import ReadyQueue
from flowpipe.engine.retry import Action, Attempts, RetryPolicy, decide
from flowpipe.errors import (
    AccountPausedError,
    APIError,
    CaptchaError,
    ImageURLError,
    ModelQuotaError,
    NoEligibleAccountError,
)
from flowpipe.events import AccountPaused, AccountResumed, Event
from flowpipe.planner import build_plan

POLICY = RetryPolicy()


@pytest.mark.parametrize(
    ("error", "kind", "outcome"),
    [
        pytest.param(AccountPausedError("x", status=429, pause=1800), ErrorKind.PAUSED_ACCOUNT,
                     Outcome.ERROR, id="throttled"),
        pytest.param(ModelQuotaError("x", status=429, pause=60, model="m"),
                     ErrorKind.PAUSED_MODEL, Outcome.ERROR, id="model-quota"),
        pytest.param(NoEligibleAccountError("x", status=429, pause=30),
                     ErrorKind.PAUSED_SERVICE, Outcome.ERROR, id="no-eligible"),
        pytest.param(CaptchaError("x", status=403), ErrorKind.CAPTCHA, Outcome.OK,
                     id="captcha"),
        pytest.param(ImageURLError("x", status=403), ErrorKind.IMAGE_URL, Outcome.OK,
                     id="fife"),
    ],
)
def test_2026_answers_are_read_once(error: APIError, kind: ErrorKind, outcome: Outcome) -> None:
    """A pause gives the limiter no verdict at all: it frees the slot and nothing else."""
    assert classify(error) is kind
    assert kind.outcome is outcome


def _decide(error: APIError, attempts: Attempts) -> tuple[Action, float]:
    attempts.count(classify(error))
    decision = decide(error, attempts, policy=POLICY, moderation_retries=0, can_switch=True,
                      rng=random.Random(1))
    return decision.action, decision.delay


def test_a_pause_sends_the_node_back_with_no_delay_of_its_own() -> None:
    attempts = Attempts()
    error = AccountPausedError("x", status=429, pause=1800)
    decisions = [_decide(error, attempts) for _ in range(POLICY.max_pauses + 1)]
    assert decisions[0] == (Action.PAUSE, 0.0)
    assert attempts.capacity == 0  # not a capacity retry
    assert {a for a, _ in decisions[:-1]} == {Action.PAUSE}
    assert decisions[-1][0] is Action.FAIL  # a bound, for a service gone wrong


def test_a_refused_captcha_is_retried_three_times_then_fails() -> None:
    attempts = Attempts()
    error = CaptchaError("captcha refused", status=403)
    decisions = [_decide(error, attempts) for _ in range(POLICY.max_captcha_retries + 1)]
    assert [a for a, _ in decisions] == [Action.RETRY] * 3 + [Action.FAIL]
    assert all(POLICY.captcha_delay[0] <= d <= POLICY.captcha_delay[1] for _, d in decisions[:3])
    assert not attempts.reuploaded  # a captcha is no foreign reference


def test_a_lost_image_url_remakes_at_once_within_the_transport_budget() -> None:
    attempts = Attempts()
    error = ImageURLError("expired", status=403)
    decisions = [_decide(error, attempts) for _ in range(POLICY.max_transport_retries + 1)]
    assert decisions[0] == (Action.RETRY, 0.0)
    assert decisions[-1][0] is Action.FAIL and attempts.transport == 11


def test_pauses_only_grow_and_end_in_time() -> None:
    pauses = Pauses()
    assert pauses.add("a", None, USER_REQUESTS_THROTTLED, 100.0) is not None
    assert pauses.add("a", None, USER_REQUESTS_THROTTLED, 50.0) is None  # never shortened
    assert pauses.add("a", "m", "quota", 300.0) is not None
    assert pauses.free_at("a", None) == 100.0
    assert pauses.free_at("a", "m") == 300.0 and pauses.free_at("a", "other") == 100.0
    assert pauses.free_at("b", "m") == 0.0
    assert [p.model for p in pauses.expired(100.0)] == [None]
    assert pauses.free_at("a", "other") == 0.0 and pauses
    assert [p.model for p in pauses.expired(299.0)] == []


def test_describe_pauses_names_each_account_its_time_and_reason() -> None:
    pauses = Pauses()
    pauses.add("a@x", None, USER_REQUESTS_THROTTLED, 1900.0)
    pauses.add("b@x", "nano-banana-pro", "PER_MODEL", 100.0 + 5 * 3600)
    wall = dt.datetime(2026, 7, 15, 12, 0, tzinfo=dt.UTC)
    text = describe_pauses(pauses.active(), now=100.0, scale=1.0, wall=wall)
    assert text == (
        f"a@x back at 2026-07-15 12:30:00 UTC (in 30 min, {USER_REQUESTS_THROTTLED}); "
        "b@x (nano-banana-pro) back at 2026-07-15 17:00:00 UTC (in 5.0 h, PER_MODEL)"
    )
    scaled = describe_pauses(pauses.active(["a@x"]), now=100.0, scale=0.01, wall=wall)
    assert scaled.startswith("a@x back at 2026-07-15 12:00:18 UTC (in 30 min of API time")


def test_the_pool_pauses_without_touching_a_limiter_and_says_so() -> None:
    clock = FakeClock()
    events: list[Event] = []

    class Sink:
        def handle(self, event: Event) -> None:
            events.append(event)

    pool = AccountPool(["a", "b"], clock=RunClock(clock, scale=0.5), sinks=[Sink()])
    before = [pool.limiter(a).window for a in pool.accounts]
    assert pool.pause("a", None, 60.0, NO_ELIGIBLE_ACCOUNT)
    assert not pool.pause("a", None, 10.0, NO_ELIGIBLE_ACCOUNT)  # already out longer
    assert not pool.available("a", "m") and pool.available("b", "m")
    [paused] = [e for e in events if isinstance(e, AccountPaused)]
    assert (paused.account, paused.until) == ("a", 30.0)  # 60 API s at scale 0.5
    clock.advance(29.0)
    assert not pool.resume_due()
    clock.advance(1.0)
    assert pool.resume_due() and pool.available("a", "m")
    assert [e.account for e in events if isinstance(e, AccountResumed)] == ["a"]
    assert [pool.limiter(a).window for a in pool.accounts] == before


def test_pop_first_skips_what_an_account_cannot_take_and_keeps_the_order(tmp_path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\nname: q\nsteps:\n  s:\n    matrix: {n: [1, 2, 3, 4]}\n"
                      "    prompt: 'p {{ n }}'\n")
    queue = ReadyQueue(build_plan(recipe))
    for nid in ["s[n=1]", "s[n=2]", "s[n=3]", "s[n=4]"]:
        queue.push(nid)
    assert queue.pop_first(lambda nid: nid.endswith("3]")) == "s[n=3]"
    assert queue.pop_first(lambda nid: False) is None
    assert queue.any(lambda nid: nid == "s[n=4]") and not queue.any(lambda nid: False)
    assert queue.queued() == ["s[n=1]", "s[n=2]", "s[n=4]"]


def test_the_virtual_clock_waits_for_thread_work_instead_of_jumping_past_it() -> None:
    clock = VirtualClock()

    async def main() -> tuple[float, float]:
        sleeper = asyncio.ensure_future(clock.sleep(1000.0))
        await asyncio.to_thread(time.sleep, 0.05)  # real work in a thread
        during = clock.time()
        await sleeper
        return during, clock.time()

    assert clock.run(main()) == (0.0, 1000.0)


def test_run_json_keeps_one_record_per_stretch_out() -> None:
    from flowpipe.engine.record import RunRecorder

    recorder = RunRecorder()
    for event in (AccountPaused(1.0, "a", None, 10.0, "R1"), AccountPaused(2.0, "a", None, 30.0,
                  "R2"), AccountPaused(3.0, "a", "m", 9.0, "M"), AccountResumed(30.0, "a", None),
                  AccountPaused(40.0, "a", None, 50.0, "R1")):
        recorder.handle(event)
    assert [(p.at, p.model, p.reason, p.until, p.resumed) for p in recorder.pauses()] == [
        (1.0, None, "R2", 30.0, 30.0), (3.0, "m", "M", 9.0, None), (40.0, None, "R1", 50.0, None)
    ]


def test_the_quota_stop_reads_as_the_run_s_own_words() -> None:
    from flowpipe.errors import QuotaStopError

    error = QuotaStopError("every account ... is paused", status=429, hint="run again later")
    assert str(error) == "every account ... is paused (run again later)"
