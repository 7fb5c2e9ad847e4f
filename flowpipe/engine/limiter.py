"""Per-account concurrency limiters: how many generations may be in flight at once.

The API grants between 3 and 20 parallel generations and says so only by answering
429/503 (a generation takes 10-20 s at any load, so latency carries no signal). The
``AdaptiveLimiter`` is therefore loss-based (docs/concurrency.md has the reasoning
and the tuning numbers):

- dispatch while in-flight < window;
- at the start, before any rejection, every slot busy and work waiting add one slot
  each ``probe_pace``: nothing has pushed back yet and the pacing bounds the overshoot
  to about one round trip of sends; a level is proven when its send has been out
  ``probe_interval``; the first rejection ends the start like a failed probe below
  (back to the proven level), and the start's rejections are not charged to the budget;
- after that, while every slot is busy and work waits, raise the window by a step
  that doubles after each clean probe (1, 2, 4, 8); a probe is clean when the request
  that filled the window has been out ``probe_interval`` API seconds without a
  rejection; sends above the last good window are paced ``probe_pace`` apart, so an
  overshoot is answered by one rejection instead of a burst;
- a rejection of a request sent above the last good window since the last raise
  falls back to that window (and, ``confirm_after`` later, back up to the number of
  the probe's requests still out: those were accepted); any other rejection cuts to
  max(min, min(accepted in-flight, cut·window)); after either, growth holds a while;
- rejections of requests sent before the last decrease are stale and ignored;
- failed probes spend a rejection budget earned by successes, so probing at a
  ceiling costs at most ``rejection_budget`` rejections per success.

Each limiter has a synchronous core (``try_acquire``, ``release``, ``poll``, all
taking an explicit ``now``) that a discrete-event simulation can drive
(``benchmarks/limiter_sim.py``), and an async ``acquire`` that waits for it. All
durations in ``LimiterConfig`` are API seconds, and so are the ``clock`` and ``sleep``
it is given: a run hands it its ``RunClock``'s API-time view, so a simulator running
50 times faster shrinks every timer by the same factor with no scaling in here.
Event times are the clock's.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "AdaptiveLimiter",
    "FixedLimiter",
    "Limiter",
    "LimiterConfig",
    "LimiterEvent",
    "Outcome",
    "Permit",
]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
EventKind = Literal["start", "raise", "fallback", "cut", "rejection"]


class Outcome(enum.Enum):
    """What a request's answer says about capacity."""

    OK = "ok"  # the API answered (200 or any non-capacity status): the slot worked
    REJECTED = "rejected"  # 429, 503, timeout, connection reset: over capacity
    ERROR = "error"  # no verdict (cancelled, failed before sending): frees the slot only
    UNUSED = "unused"  # nothing was sent with it (no node, the cache answered): as if never
    # issued, so it proves no window and paces no send


@dataclass(frozen=True, slots=True, kw_only=True)
class Permit:
    """One granted slot; hand it back to ``release`` exactly once."""

    seq: int  # issue order, unique per limiter
    epoch: int  # number of decreases before it was issued: older epochs are stale
    sent_at: float  # the clock's seconds
    level: int  # in-flight count including this request when it was issued


@dataclass(frozen=True, slots=True, kw_only=True)
class LimiterEvent:
    """A window change or a rejection, for the run's timeline (run.json)."""

    at: float  # the clock's seconds
    kind: EventKind
    window: int  # after the event
    previous: int  # before the event
    in_flight: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LimiterConfig:
    """Bounds and timers of the adaptive limiter; durations in API seconds.

    The defaults are tuned with ``benchmarks/limiter_sim.py`` (docs/concurrency.md).
    """

    min_window: int = 3
    max_window: int = 20
    initial_window: int = 3
    max_step: int = 8  # the probe step doubles 1, 2, 4, 8 and stays there
    probe_interval: float = 0.5  # a full window must stay clean this long to grow
    confirm_after: float = 1.0  # a request out this long was accepted (a 429 is fast)
    probe_pace: float = 0.15  # between sends above the last good window
    cut_factor: float = 0.7
    hold_after_cut: float = 2.0  # no growth this long after a cut
    hold_after_fallback: float = 10.0  # ... and after a failed probe
    rejection_budget: float = 0.15  # failed probes may cost this many rejections per success
    budget_cap: float = 20.0  # rejections the budget can save up
    initial_budget: float = 2.0  # rejections the first probes may cost
    fast_start: bool = True  # climb one slot per probe_pace until the first decrease

    def __post_init__(self) -> None:
        if not 1 <= self.min_window <= self.initial_window <= self.max_window:
            raise ValueError(
                "need 1 <= min_window <= initial_window <= max_window, got "
                f"{self.min_window}, {self.initial_window}, {self.max_window}"
            )
        if self.max_step < 1:
            raise ValueError(f"max_step must be >= 1, got {self.max_step}")
        if not 0 < self.cut_factor < 1:
            raise ValueError(f"cut_factor must be in (0, 1), got {self.cut_factor}")
        timers = (
            self.probe_interval,
            self.confirm_after,
            self.probe_pace,
            self.hold_after_cut,
            self.hold_after_fallback,
        )
        budgets = (self.rejection_budget, self.initial_budget)
        if min(timers) < 0 or min(budgets) < 0 or self.budget_cap < 1:
            raise ValueError("timers and the budget must be >= 0, budget_cap >= 1")


class Limiter(Protocol):
    """What the scheduler needs from a limiter (adaptive or fixed)."""

    @property
    def window(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def waiting(self) -> int: ...
    async def acquire(self) -> Permit: ...
    def release(self, permit: Permit, outcome: Outcome, *, now: float | None = None) -> None: ...


class _BaseLimiter:
    """Permit bookkeeping and the async wait; subclasses decide the window.

    Waiters queue FIFO. Only the head waiter sleeps with a timeout (until the next
    probe is due); the others wait for a wake-up, so a thousand waiting jobs cost
    nothing. Whoever takes a slot or leaves the queue wakes the next head.
    """

    def __init__(
        self,
        window: int,
        *,
        clock: Clock,
        sleep: Sleep,
        on_event: Callable[[LimiterEvent], None] | None,
    ) -> None:
        self._window = window
        self._clock = clock
        self._sleep = sleep
        self._on_event = on_event
        self._epoch = 0
        self._next_seq = 0
        self._outstanding: dict[int, Permit] = {}
        self._waiters: deque[asyncio.Event] = deque()
        self._emit(clock(), "start", window, "initial window")

    @property
    def window(self) -> int:
        """The current number of slots."""
        return self._window

    @property
    def in_flight(self) -> int:
        """Permits issued and not yet released."""
        return len(self._outstanding)

    @property
    def waiting(self) -> int:
        """``acquire`` calls blocked for a slot."""
        return len(self._waiters)

    # -- synchronous core ---------------------------------------------------------------

    def try_acquire(self, now: float | None = None) -> Permit | None:
        """Take a slot if one is free, without waiting."""
        if len(self._outstanding) >= self._window:
            return None
        at = self._clock() if now is None else now
        if not self._may_issue(at):
            return None
        permit = Permit(
            seq=self._next_seq, epoch=self._epoch, sent_at=at, level=len(self._outstanding) + 1
        )
        self._next_seq += 1
        self._outstanding[permit.seq] = permit
        self._issued(permit)
        return permit

    def release(self, permit: Permit, outcome: Outcome, *, now: float | None = None) -> None:
        """Give a slot back and tell the limiter what the answer said about capacity."""
        if self._outstanding.pop(permit.seq, None) is None:
            raise ValueError(f"permit {permit.seq} released twice or not issued here")
        at = self._clock() if now is None else now
        self._released(permit, outcome, at)
        self._wake_head()

    def poll(self, now: float | None = None, *, waiting: int | None = None) -> float | None:
        """Do what time makes due; return when to poll again (the clock's s) or None.

        ``waiting`` is how many requests are ready but have no slot; it defaults to the
        number of blocked ``acquire`` calls.
        """
        return None

    # -- async ------------------------------------------------------------------------

    async def acquire(self) -> Permit:
        """Wait (cancellably, first come first served) for a slot."""
        if not self._waiters:
            permit = self.try_acquire()
            if permit is not None:
                return permit
        event = asyncio.Event()
        self._waiters.append(event)
        try:
            while True:
                event.clear()
                timeout: float | None = None
                if self._waiters[0] is event:
                    now = self._clock()
                    deadline = self.poll(now)
                    permit = self.try_acquire(now)
                    if permit is not None:
                        return permit
                    if deadline is not None:
                        timeout = max(0.0, deadline - now)
                await self._wait(event, timeout)
        finally:
            was_head = self._waiters[0] is event
            self._waiters.remove(event)
            if was_head:
                self._wake_head()

    async def _wait(self, event: asyncio.Event, timeout: float | None) -> None:
        if timeout is None:
            await event.wait()
            return
        woken = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self._sleep(timeout))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            timer.cancel()

    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].set()

    # -- hooks ------------------------------------------------------------------------

    def _may_issue(self, now: float) -> bool:
        """Whether a free slot may be used now (the adaptive one paces its probes)."""
        return True

    def _issued(self, permit: Permit) -> None:
        """Called after a permit is issued."""

    def _released(self, permit: Permit, outcome: Outcome, now: float) -> None:
        if outcome is Outcome.REJECTED:
            self._emit(now, "rejection", self._window, "capacity rejection")

    def _emit(self, now: float, kind: EventKind, previous: int, reason: str) -> None:
        if self._on_event is not None:
            self._on_event(
                LimiterEvent(
                    at=now,
                    kind=kind,
                    window=self._window,
                    previous=previous,
                    in_flight=len(self._outstanding),
                    reason=reason,
                )
            )


class FixedLimiter(_BaseLimiter):
    """A constant window: the fixed-3 / fixed-20 / one-at-a-time baselines."""

    def __init__(
        self,
        window: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_event: Callable[[LimiterEvent], None] | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        super().__init__(window, clock=clock, sleep=sleep, on_event=on_event)


class AdaptiveLimiter(_BaseLimiter):
    """The loss-based window of DESIGN section 4 (see the module docstring)."""

    def __init__(
        self,
        config: LimiterConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_event: Callable[[LimiterEvent], None] | None = None,
    ) -> None:
        self.config = config if config is not None else LimiterConfig()
        self._probe_interval = self.config.probe_interval
        self._confirm_after = self.config.confirm_after
        self._probe_pace = self.config.probe_pace
        self._probe_sent_at: float | None = None  # the last send above the last good window
        # Who set _probe_sent_at (seq, the value before) and _filled_at (seq): a permit
        # given back UNUSED takes back what it set, if nothing set it again since.
        self._prober: tuple[int, float | None] | None = None
        self._filler: int | None = None
        self._step = 1
        self._last_good = self.config.initial_window
        self._raise_seq: int | None = None  # first permit issued after the last raise
        self._filled_at: float | None = None  # when a send filled the current window
        self._hold_until = -math.inf
        self._budget = self.config.initial_budget  # rejections a probe may still cost
        # After a failed probe: when to count the probe's requests that were accepted,
        # the first seq not to count, and the most the window may get back.
        self._recount: tuple[float, int, int] | None = None
        # Until the first decrease the window climbs by one slot per probe_pace: no
        # capacity has pushed back yet, and the pacing bounds the overshoot.
        self._starting = self.config.fast_start
        self._start_end: int | None = None if self._starting else 0  # first seq after it
        super().__init__(self.config.initial_window, clock=clock, sleep=sleep, on_event=on_event)

    @property
    def step(self) -> int:
        """What the next raise adds."""
        return self._step

    def poll(self, now: float | None = None, *, waiting: int | None = None) -> float | None:
        """Raise the window if a probe is due; return when the next one may be due.

        Growth needs pressure: every slot busy and work waiting. It also needs proof
        that the current window works: a request sent as the window's last slot that
        has been out ``probe_interval`` with no rejection since.
        """
        at = self._clock() if now is None else now
        deadlines: list[float] = []
        if self._starting:
            self._prove_start(at)
        if (recount := self._settle_probe(at)) is not None:
            deadlines.append(recount)
        pending = len(self._waiters) if waiting is None else waiting
        window = self._window
        if pending <= 0:
            pass
        elif len(self._outstanding) < window:
            paced = self._paced_until()
            if paced is not None and at < paced:
                deadlines.append(paced)
        elif window < self.config.max_window and self._filled_at is not None:
            # Without budget, wait: an answer comes first, and it wakes the waiters.
            interval = self._probe_pace if self._starting else self._probe_interval
            due = max(self._filled_at + interval, self._hold_until)
            if self._budget < 1 and not self._starting:
                pass
            elif at < due:
                deadlines.append(due)
            else:
                self._raise(at)
        return min(deadlines, default=None)

    def _raise(self, now: float) -> None:
        previous = self._window
        if self._starting:
            self._window = previous + 1
            if self._raise_seq is None:
                self._raise_seq = self._next_seq
            self._filled_at = None
            self._emit(now, "raise", previous, "start: no rejection yet")
            return
        self._last_good = previous
        self._window = min(self.config.max_window, previous + self._step)
        self._step = min(self.config.max_step, self._step * 2)
        self._raise_seq = self._next_seq
        self._filled_at = None
        self._emit(now, "raise", previous, f"probe: {previous} held clean")

    def _paced_until(self) -> float | None:
        """When the next request above the last good window may go (None: now)."""
        if len(self._outstanding) < self._last_good or self._probe_sent_at is None:
            return None
        return self._probe_sent_at + self._probe_pace

    def _may_issue(self, now: float) -> bool:
        paced = self._paced_until()
        return paced is None or now >= paced

    def _settle_probe(self, now: float) -> float | None:
        """Give a failed probe credit for the requests it got accepted.

        A rejection answers fast, so ``confirm_after`` after the fallback every request
        sent before it and still out was accepted: the capacity was at least that many
        at the moment of the rejection, so the window goes back up to that count (below
        the window that failed). Returns when to call again while that is pending.
        """
        if self._recount is None:
            return None
        due, before_seq, cap = self._recount
        if now < due:
            return due
        self._recount = None
        accepted = sum(1 for seq in self._outstanding if seq < before_seq)
        window = min(cap, accepted)
        if window > self._window:
            previous, self._window = self._window, window
            self._last_good = window
            self._filled_at, self._filler = now, None  # those requests fill it, accepted
            self._emit(now, "raise", previous, f"failed probe still had {accepted} accepted")
            self._wake_head()
        return None

    def _issued(self, permit: Permit) -> None:
        if permit.level > self._last_good:
            self._prober = (permit.seq, self._probe_sent_at)
            self._probe_sent_at = permit.sent_at
        if permit.level >= self._window and self._filled_at is None:
            self._filled_at = permit.sent_at
            self._filler = permit.seq

    def _unused(self, permit: Permit) -> None:
        """Take back what ``permit`` set when it was issued: nothing was sent with it."""
        if self._filler == permit.seq:
            self._filled_at = self._filler = None
        if self._prober is not None and self._prober[0] == permit.seq:
            self._probe_sent_at, self._prober = self._prober[1], None

    def _released(self, permit: Permit, outcome: Outcome, now: float) -> None:
        if outcome is Outcome.UNUSED:
            self._unused(permit)
            return
        if outcome is Outcome.OK:
            self._budget = min(self.config.budget_cap, self._budget + self.config.rejection_budget)
            return
        if outcome is not Outcome.REJECTED:
            return
        if self._starting:
            self._prove_start(now)
        previous = self._window
        probing = self._raise_seq is not None and permit.seq >= self._raise_seq
        in_start = self._start_end is None or permit.seq < self._start_end
        if not in_start and (
            permit.epoch < self._epoch or (probing and permit.level > self._last_good)
        ):
            self._budget = max(0.0, self._budget - 1)  # what probing costs
        if permit.epoch < self._epoch:
            self._emit(now, "rejection", previous, "stale: sent before the last decrease")
            return
        self._emit(now, "rejection", previous, "capacity rejection")
        if probing and permit.level > self._last_good:
            self._decrease(now, self._last_good, self.config.hold_after_fallback)
            self._recount = (now + self._confirm_after, self._next_seq, previous - 1)
            self._emit(now, "fallback", previous, f"probe to {previous} failed")
            return
        accepted = sum(
            1 for p in self._outstanding.values() if now - p.sent_at >= self._confirm_after
        )
        target = min(accepted, math.floor(self.config.cut_factor * previous))
        self._decrease(now, target, self.config.hold_after_cut)
        self._emit(now, "cut", previous, f"rejection with {accepted} accepted in flight")

    def _prove_start(self, now: float) -> None:
        """In the start, a level whose send has been out ``probe_interval`` is good.

        The start ends when the top of the window is proven: from then on a rejection
        is an ordinary cut, not a failed climb.
        """
        proven = max(
            (
                p.level
                for p in self._outstanding.values()
                if now - p.sent_at >= self._probe_interval
            ),
            default=0,
        )
        self._last_good = max(self._last_good, min(proven, self._window))
        if self._last_good >= self.config.max_window:
            self._end_start()

    def _end_start(self) -> None:
        if self._starting:
            self._starting = False
            self._start_end = self._next_seq

    def _decrease(self, now: float, window: int, hold: float) -> None:
        """Lower the window, start a new epoch and hold growth."""
        self._window = max(self.config.min_window, min(window, self._window))
        self._last_good = self._window
        self._end_start()
        self._epoch += 1
        self._step = 1
        self._recount = None
        self._raise_seq = None
        self._filled_at = None
        self._hold_until = now + hold
