"""The concurrency limiters, driven by explicit times: no test waits for real time."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowpipe.engine.clock import FakeClock, RunClock
from flowpipe.engine.limiter import (
    AdaptiveLimiter,
    FixedLimiter,
    LimiterConfig,
    LimiterEvent,
    Outcome,
    Permit,
)

# Explicit values, so re-tuning the defaults does not change what these tests mean.
CFG = LimiterConfig(
    min_window=3,
    max_window=20,
    initial_window=3,
    max_step=8,
    probe_interval=1.0,
    confirm_after=1.0,
    probe_pace=0.0,
    cut_factor=0.7,
    hold_after_cut=5.0,
    hold_after_fallback=5.0,
    rejection_budget=0.15,
    budget_cap=20.0,
    initial_budget=20.0,
    fast_start=False,  # the start phase has tests of its own below
)


def make(**changes: object) -> tuple[AdaptiveLimiter, list[LimiterEvent]]:
    events: list[LimiterEvent] = []
    config = dataclasses.replace(CFG, **changes)  # type: ignore[arg-type]
    return AdaptiveLimiter(config, clock=lambda: 0.0, on_event=events.append), events


def fill(lim: AdaptiveLimiter | FixedLimiter, now: float) -> list[Permit]:
    """Take every free slot at ``now``."""
    permits = []
    while (p := lim.try_acquire(now)) is not None:
        permits.append(p)
    return permits


def grow(lim: AdaptiveLimiter, now: float) -> float:
    """Fill the window, let the probe interval pass under pressure, poll; return time."""
    fill(lim, now)
    now += CFG.probe_interval
    lim.poll(now, waiting=1)
    return now


def ramp_to(lim: AdaptiveLimiter, target: int, now: float = 0.0) -> float:
    while lim.window < target:
        now = grow(lim, now)
    assert lim.window == target
    return now


# -- dispatch -------------------------------------------------------------------------


def test_dispatch_stops_at_the_window() -> None:
    lim, _ = make(initial_window=4)
    assert len(fill(lim, 0.0)) == 4
    assert lim.try_acquire(0.0) is None
    assert lim.in_flight == 4


def test_release_frees_a_slot_once() -> None:
    lim, _ = make()
    first, *_ = fill(lim, 0.0)
    lim.release(first, Outcome.OK, now=1.0)
    assert lim.try_acquire(1.0) is not None
    with pytest.raises(ValueError, match="released twice"):
        lim.release(first, Outcome.OK, now=2.0)


# -- probing --------------------------------------------------------------------------


def test_probe_steps_double_after_each_clean_probe() -> None:
    lim, events = make()
    windows = [lim.window]
    now = 0.0
    while lim.window < 20:
        now = grow(lim, now)
        windows.append(lim.window)
    assert windows == [3, 4, 6, 10, 18, 20]
    assert [e.kind for e in events] == ["start"] + ["raise"] * 5


def test_step_stays_at_max_step() -> None:
    lim, _ = make(max_step=2)
    ramp_to(lim, 12)  # steps 1, 2, 2, 2, 2: 3, 4, 6, 8, 10, 12
    assert lim.step == 2


@pytest.mark.parametrize(
    ("waiting", "fill_window", "grows"),
    [
        pytest.param(1, True, True, id="busy-and-waiting"),
        pytest.param(0, True, False, id="busy-but-no-work-waiting"),
        pytest.param(5, False, False, id="work-waiting-but-slots-free"),
    ],
)
def test_probe_needs_full_window_and_waiting_work(
    waiting: int, fill_window: bool, grows: bool
) -> None:
    lim, _ = make()
    permits = fill(lim, 0.0)
    if not fill_window:
        lim.release(permits[0], Outcome.OK, now=0.5)
    lim.poll(10.0, waiting=waiting)
    assert (lim.window == 4) is grows


def test_probe_waits_for_the_interval_and_says_when() -> None:
    lim, _ = make()
    fill(lim, 2.0)
    assert lim.poll(2.5, waiting=1) == pytest.approx(3.0)
    assert lim.window == 3
    assert lim.poll(3.0, waiting=1) is None
    assert lim.window == 4


def test_raised_window_must_be_used_before_the_next_raise() -> None:
    lim, _ = make()
    grow(lim, 0.0)
    assert lim.window == 4
    assert lim.poll(100.0, waiting=1) is None  # nothing was sent at 4 yet
    assert lim.window == 4


def test_window_never_exceeds_max() -> None:
    lim, _ = make(max_window=7)
    now = ramp_to(lim, 7)
    for _ in range(5):
        now = grow(lim, now)
    assert lim.window == 7


# -- rejections -----------------------------------------------------------------------


def test_failed_probe_falls_back_to_last_good_and_resets_step() -> None:
    lim, events = make()
    now = ramp_to(lim, 10)  # 3, 4, 6, 10: the last good is 6
    permits = fill(lim, now)  # levels 7-10 are the probe
    lim.release(permits[-1], Outcome.REJECTED, now=now + 0.2)
    assert lim.window == 6
    assert lim.step == 1
    assert [e.kind for e in events[-2:]] == ["rejection", "fallback"]


def test_rejection_below_the_probe_level_is_an_ordinary_cut() -> None:
    lim, events = make()
    held: list[Permit] = []
    now = 0.0
    while lim.window < 18:  # 3, 4, 6, 10, 18: last good 10, levels 1-10 held
        held += fill(lim, now)
        now += 1.0
        lim.poll(now, waiting=1)
    for p in held[:6]:
        lim.release(p, Outcome.OK, now=now)
    low = lim.try_acquire(now)  # sent after the raise, but at level 5 <= last good
    assert low is not None and low.level == 5
    lim.release(low, Outcome.REJECTED, now=now + 0.2)
    assert events[-1].kind == "cut"
    assert lim.window == 4  # the 4 accepted in flight, not the fallback to 10


@pytest.mark.parametrize(
    ("window", "old", "young", "expected"),
    [
        pytest.param(20, 19, 0, 14, id="cut-by-factor"),
        pytest.param(20, 8, 11, 8, id="cut-to-accepted"),
        pytest.param(10, 1, 8, 3, id="floor-at-min"),
        pytest.param(4, 3, 0, 3, id="small-window"),
    ],
)
def test_cut_is_max_min_accepted_and_factor(
    window: int, old: int, young: int, expected: int
) -> None:
    lim, events = make(initial_window=window)
    old_permits = [lim.try_acquire(0.0) for _ in range(old)]
    young_permits = [lim.try_acquire(10.0) for _ in range(young)]
    rejected = lim.try_acquire(10.0)
    assert rejected is not None and None not in old_permits + young_permits
    lim.release(rejected, Outcome.REJECTED, now=10.5)  # young ones: not yet known
    assert lim.window == expected
    assert events[-1].kind == "cut"
    assert (events[-1].previous, events[-1].window) == (window, expected)


def test_growth_holds_after_a_cut() -> None:
    lim, _ = make(initial_window=10)
    permits = fill(lim, 0.0)
    lim.release(permits[-1], Outcome.REJECTED, now=2.0)  # cut to 7, hold until 7.0
    assert lim.window == 7
    for p in permits[:3]:
        lim.release(p, Outcome.OK, now=2.0)
    fill(lim, 2.0)
    assert lim.poll(4.0, waiting=1) == pytest.approx(7.0)
    assert lim.window == 7
    lim.poll(7.0, waiting=1)
    assert lim.window == 8


def test_stale_rejections_are_ignored() -> None:
    lim, events = make(initial_window=20)
    permits = fill(lim, 0.0)
    lim.release(permits[0], Outcome.REJECTED, now=5.0)
    assert lim.window == 14
    for p in permits[1:6]:  # sent before that cut
        lim.release(p, Outcome.REJECTED, now=5.0)
    assert lim.window == 14
    assert sum("stale" in e.reason for e in events) == 5


def test_rejection_after_the_cut_cuts_again() -> None:
    lim, _ = make(initial_window=20)
    permits = fill(lim, 0.0)
    lim.release(permits[0], Outcome.REJECTED, now=5.0)
    for p in permits[1:7]:
        lim.release(p, Outcome.OK, now=6.0)
    fresh = lim.try_acquire(6.0)
    assert fresh is not None
    lim.release(fresh, Outcome.REJECTED, now=6.2)
    assert lim.window == 9  # floor(0.7 * 14); 13 accepted in flight


def test_error_outcome_frees_the_slot_and_changes_nothing() -> None:
    lim, events = make(initial_window=5)
    permits = fill(lim, 0.0)
    lim.release(permits[0], Outcome.ERROR, now=1.0)
    assert (lim.window, lim.in_flight) == (5, 4)
    assert [e.kind for e in events] == ["start"]


def test_failed_probe_gets_credit_for_what_it_got_accepted() -> None:
    lim, events = make()
    now = ramp_to(lim, 18)  # last good 10
    probe = fill(lim, now)  # levels 11-18; say capacity is 14
    for p in probe[14 - 10 :]:
        lim.release(p, Outcome.REJECTED, now=now + 0.2)
    assert lim.window == 10
    assert lim.poll(now + 0.5, waiting=1) == pytest.approx(now + 1.2)
    lim.poll(now + 1.2, waiting=1)
    assert lim.window == 14
    assert events[-1].reason == "failed probe still had 14 accepted"


def test_no_probe_without_rejection_budget() -> None:
    lim, _ = make(initial_budget=0.0, rejection_budget=0.5)
    permits = fill(lim, 0.0)
    assert lim.poll(5.0, waiting=1) is None
    assert lim.window == 3
    lim.release(permits[0], Outcome.OK, now=5.0)
    lim.release(permits[1], Outcome.OK, now=5.0)  # budget 1.0: one rejection allowed
    fill(lim, 5.0)
    lim.poll(6.0, waiting=1)
    assert lim.window == 4


def test_a_slot_given_back_unused_proves_nothing() -> None:
    """A permit that filled the window but sent nothing (the node went elsewhere, the
    cache answered it) is no proof that the window holds: the raise waits for a send
    that really filled it (review A-22)."""
    lim, _ = make()
    unused = fill(lim, 0.0)[-1]
    lim.release(unused, Outcome.UNUSED, now=0.0)
    assert lim.try_acquire(0.5) is not None  # the window is full again, for real
    assert lim.poll(1.0, waiting=1) == pytest.approx(1.5)
    assert lim.window == 3
    assert lim.poll(1.5, waiting=1) is None
    assert lim.window == 4


def test_a_probe_slot_given_back_unused_does_not_pace_the_next_send() -> None:
    lim, _ = make(probe_pace=0.25)
    now = ramp_to(lim, 6)  # last good 4: levels 5 and 6 are the probe
    fill(lim, now)
    assert lim.in_flight == 5
    newest = lim.try_acquire(now + 0.25)
    assert newest is not None
    lim.release(newest, Outcome.UNUSED, now=now + 0.25)
    assert lim.try_acquire(now + 0.25) is not None  # not another 0.25 s later


def test_sends_above_the_last_good_window_are_paced() -> None:
    lim, _ = make(probe_pace=0.25)
    now = ramp_to(lim, 6)  # last good 4: levels 5 and 6 are the probe
    fill(lim, now)
    assert lim.in_flight == 5  # level 6 must wait 0.25 s after level 5
    assert lim.poll(now, waiting=1) == pytest.approx(now + 0.25)
    assert lim.try_acquire(now + 0.25) is not None


@pytest.mark.parametrize(
    ("probe_failed", "budget_left"),
    [
        pytest.param(True, False, id="failed-probe-spends"),
        pytest.param(False, True, id="cut-is-free"),
    ],
)
def test_only_probing_spends_the_rejection_budget(probe_failed: bool, budget_left: bool) -> None:
    lim, _ = make(initial_budget=1.0, rejection_budget=0.0)
    held = fill(lim, 0.0)  # levels 1-3
    lim.poll(1.0, waiting=1)  # 3 -> 4 costs nothing by itself
    held += fill(lim, 1.0)  # level 4: the probe
    rejected = held[-1] if probe_failed else held[0]
    lim.release(rejected, Outcome.REJECTED, now=1.2)
    for p in held:
        if p is not rejected:
            lim.release(p, Outcome.OK, now=1.2)
    assert lim.window == 3 and len(fill(lim, 100.0)) == 3
    lim.poll(101.0, waiting=1)
    assert (lim.window > 3) is budget_left


def test_time_scale_shrinks_every_timer() -> None:
    """The run's clock hands the limiter API seconds: at scale 0.01 every timer is 100x
    shorter in clock seconds (the limiter itself knows nothing of the scale)."""
    fake = FakeClock()
    clock = RunClock(fake, scale=0.01)
    lim = AdaptiveLimiter(dataclasses.replace(CFG, initial_window=10), clock=clock.api_time)
    permits = fill(lim, clock.api_time())
    fake.advance(0.02)
    lim.release(permits[-1], Outcome.REJECTED)  # hold 5 API s = 0.05 s
    for p in permits[:3]:
        lim.release(p, Outcome.OK)
    fill(lim, clock.api_time())
    fake.advance(0.01)
    due = lim.poll(waiting=1)
    assert due is not None and clock.to_clock(due) == pytest.approx(0.07)
    fake.advance(0.04)
    lim.poll(waiting=1)
    assert lim.window == 8


# -- the start ----------------------------------------------------------------------


def start(**changes: object) -> tuple[AdaptiveLimiter, list[LimiterEvent]]:
    """A limiter in its start phase: one slot more every 0.25 s while pressed."""
    return make(fast_start=True, probe_pace=0.25, **changes)


def climb(lim: AdaptiveLimiter, until: float) -> list[Permit]:
    """Keep the limiter pressed (poll with work waiting, fill) every 0.05 s until ``until``."""
    sent: list[Permit] = []
    for tick in range(round(until * 20) + 1):
        lim.poll(tick / 20, waiting=1)
        sent += fill(lim, tick / 20)
    return sent


def test_start_climbs_one_slot_per_pace_without_waiting_for_the_interval() -> None:
    lim, events = start()
    sent = climb(lim, 1.0)
    assert lim.window == 7  # 3, then one more at 0.25, 0.5, 0.75 and 1.0
    assert [p.sent_at for p in sent[3:]] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert {e.reason for e in events if e.kind == "raise"} == {"start: no rejection yet"}
    steady, _ = make(probe_pace=0.25)  # the same limiter out of its start phase
    climb(steady, 1.0)
    assert steady.window == 4  # probe_interval 1.0: one raise in the same second


def test_start_needs_pressure_too() -> None:
    lim, _ = start()
    fill(lim, 0.0)
    assert lim.poll(5.0, waiting=0) is None
    assert lim.window == 3


def test_start_ends_at_the_first_rejection_with_credit_for_what_was_accepted() -> None:
    lim, events = start()
    sent = climb(lim, 2.0)  # levels 1-11 out; say capacity is 9
    assert len(sent) == 11
    lim.release(sent[9], Outcome.REJECTED, now=2.1)
    # back to level 7, sent at 1.0 and out probe_interval (1.0) without a rejection
    assert lim.window == 7 and events[-1].kind == "fallback"
    lim.release(sent[10], Outcome.REJECTED, now=2.3)  # sent before the fallback: stale
    assert "stale" in events[-1].reason
    lim.poll(3.1, waiting=1)  # confirm_after later: the 9 still out were accepted
    assert lim.window == 9
    lim.release(sent[0], Outcome.OK, now=3.1)
    fill(lim, 3.1)
    lim.poll(10.0, waiting=1)  # from here on, steady probing: step 1 after the hold
    assert lim.window == 10 and lim.step == 2


def test_start_ends_when_max_window_is_proven_and_a_drop_then_cuts() -> None:
    lim, events = start(max_window=6)
    sent = climb(lim, 2.0)  # 6 reached at 0.75, proven at 1.75
    assert lim.window == 6 and len(sent) == 6
    assert lim.try_acquire(2.0) is None
    lim.release(sent[0], Outcome.OK, now=2.0)
    refill = lim.try_acquire(2.0)  # at the proven top: not paced, not a probe
    assert refill is not None
    lim.release(refill, Outcome.REJECTED, now=2.2)  # capacity dropped
    assert events[-1].kind == "cut"
    assert lim.window == 4  # floor(0.7 * 6); 5 accepted in flight


def test_start_rejections_do_not_spend_the_budget() -> None:
    lim, _ = start(initial_budget=1.0, rejection_budget=0.0)
    sent = climb(lim, 0.5)  # levels 1-5
    for p in sent[3:]:
        lim.release(p, Outcome.REJECTED, now=0.6)  # the start's overshoot and its stale one
    assert lim.window == 3
    lim.release(sent[0], Outcome.OK, now=1.0)
    fill(lim, 1.0)
    lim.poll(20.0, waiting=1)
    assert lim.window == 4  # the budget of 1 is still there for the first probe


# -- properties -----------------------------------------------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "ok", "reject", "error", "poll"]),
        st.floats(min_value=0.0, max_value=3.0),
        st.integers(min_value=0, max_value=30),
    ),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(ops=operations, lo=st.integers(1, 6), span=st.integers(0, 15), fast=st.booleans())
def test_window_stays_within_bounds(
    ops: list[tuple[str, float, int]], lo: int, span: int, fast: bool
) -> None:
    lim, events = make(min_window=lo, initial_window=lo, max_window=lo + span, fast_start=fast)
    held: list[Permit] = []
    now = 0.0
    for op, dt, pick in ops:
        now += dt
        if op == "acquire":
            held.extend(fill(lim, now))
        elif op == "poll":
            lim.poll(now, waiting=pick)
        elif held:
            permit = held.pop(pick % len(held))
            outcome = {"ok": Outcome.OK, "reject": Outcome.REJECTED, "error": Outcome.ERROR}[op]
            lim.release(permit, outcome, now=now)
        assert lo <= lim.window <= lo + span
        assert lim.in_flight == len(held)
    assert all(lo <= e.window <= lo + span for e in events)


# -- fixed ----------------------------------------------------------------------------


def test_fixed_limiter_keeps_its_window_and_reports_rejections() -> None:
    events: list[LimiterEvent] = []
    lim = FixedLimiter(3, clock=lambda: 0.0, on_event=events.append)
    permits = fill(lim, 0.0)
    assert len(permits) == 3
    lim.release(permits[0], Outcome.REJECTED, now=1.0)
    assert lim.poll(100.0, waiting=9) is None
    assert lim.window == 3
    assert [e.kind for e in events] == ["start", "rejection"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"min_window": 5, "initial_window": 4}, id="initial-below-min"),
        pytest.param({"max_window": 2}, id="max-below-initial"),
        pytest.param({"cut_factor": 1.0}, id="cut-factor-1"),
        pytest.param({"probe_interval": -1.0}, id="negative-timer"),
    ],
)
def test_config_rejects_nonsense(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(CFG, **changes)  # type: ignore[arg-type]


# -- async ----------------------------------------------------------------------------


def async_limiter(clock: FakeClock, **changes: object) -> AdaptiveLimiter:
    config = dataclasses.replace(CFG, **changes)  # type: ignore[arg-type]
    return AdaptiveLimiter(config, clock=clock, sleep=clock.sleep)


async def test_acquire_waits_for_a_release() -> None:
    clock = FakeClock()
    lim = async_limiter(clock, initial_budget=0.0)  # no probing: only a release helps
    permits = [await lim.acquire() for _ in range(3)]
    waiter = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0)
    assert not waiter.done() and lim.waiting == 1
    lim.release(permits[0], Outcome.OK)
    permit = await asyncio.wait_for(waiter, 1)
    assert permit.level == 3 and lim.waiting == 0


async def test_probe_timer_grants_slots_while_callers_wait() -> None:
    clock = FakeClock()
    lim = async_limiter(clock)
    for _ in range(3):
        await lim.acquire()
    waiters = [asyncio.create_task(lim.acquire()) for _ in range(2)]
    done, _ = await asyncio.wait(waiters, timeout=1)
    assert len(done) == 2  # 3 -> 4 after 1 API s, then 4 -> 6: nobody released anything
    assert lim.window == 6 and lim.in_flight == 5
    assert clock.now == pytest.approx(2.0)


async def test_waiters_are_served_in_order() -> None:
    clock = FakeClock()
    lim = async_limiter(clock, initial_budget=0.0)
    permits = [await lim.acquire() for _ in range(3)]
    order: list[int] = []

    async def take(i: int) -> None:
        await lim.acquire()
        order.append(i)

    tasks = [asyncio.create_task(take(i)) for i in range(3)]
    await asyncio.sleep(0)
    for p in permits:
        lim.release(p, Outcome.OK)
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert order == [0, 1, 2]


async def test_cancelled_acquire_leaks_no_slot() -> None:
    clock = FakeClock()
    lim = async_limiter(clock, initial_budget=0.0)
    permits = [await lim.acquire() for _ in range(3)]
    head = asyncio.create_task(lim.acquire())
    second = asyncio.create_task(lim.acquire())
    await asyncio.sleep(0)
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    assert lim.waiting == 1 and lim.in_flight == 3
    lim.release(permits[0], Outcome.OK)
    await asyncio.wait_for(second, 1)  # the slot went to the next waiter
    assert lim.in_flight == 3 and lim.waiting == 0


async def test_start_climbs_while_callers_wait() -> None:
    clock = FakeClock()
    lim = async_limiter(clock, fast_start=True, probe_pace=0.25)
    for _ in range(3):
        await lim.acquire()
    waiters = [asyncio.create_task(lim.acquire()) for _ in range(4)]
    done, _ = await asyncio.wait(waiters, timeout=1)
    assert len(done) == 4  # one slot more every 0.25 s, nothing released
    assert lim.window == 7
    assert clock.now == pytest.approx(1.0)
