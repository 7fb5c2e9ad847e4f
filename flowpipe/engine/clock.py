"""The one clock of a run, and the clocks tests use instead of real time.

Every duration the engine knows is in API seconds: the 5-10 s a capacity retry
waits, the limiter's timers, the pause before looking again at a key another process
is making. Against a simulator that runs faster than the real API (its time scale),
all of them shrink by the same factor. So one ``RunClock`` is made per run from a time
source and the scale, and every part reads time and sleeps through it: nothing else
in the engine multiplies by the scale, reads ``time.monotonic`` or calls
``asyncio.sleep``.

Time sources (``Clock``): ``SystemClock`` for real runs; ``VirtualClock`` for tests of
whole runs, where every sleep ends at once, in time order; ``FakeClock`` for the
limiter's unit tests, where the test moves time by hand.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import selectors
import time
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol, TypeVar

__all__ = ["Clock", "FakeClock", "RunClock", "SystemClock", "VirtualClock"]

T = TypeVar("T")


class Clock(Protocol):
    """A time source: monotonic seconds, and a way to wait for some of them."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time: ``time.monotonic`` and ``asyncio.sleep``."""

    def time(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class RunClock:
    """A run's clock: one time source and the time scale (clock seconds per API second).

    ``now`` (seconds since the run started, for events and run.json) and ``sleep`` are
    in clock seconds; ``api_time``, ``api_sleep`` and the limiter are in API seconds.
    """

    __slots__ = ("scale", "source", "t0")

    def __init__(self, source: Clock | None = None, *, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"the time scale must be more than 0, not {scale}")
        self.source: Clock = source if source is not None else SystemClock()
        self.scale = scale
        self.t0 = self.source.time()

    def now(self) -> float:
        """Clock seconds since the run started."""
        return self.source.time() - self.t0

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` clock seconds."""
        await self.source.sleep(seconds)

    def api_time(self) -> float:
        """The source's time in API seconds (what the limiter reads)."""
        return self.source.time() / self.scale

    async def api_sleep(self, api_seconds: float) -> None:
        """Wait ``api_seconds`` API seconds."""
        await self.source.sleep(api_seconds * self.scale)

    def to_clock(self, api_seconds: float) -> float:
        return api_seconds * self.scale

    def to_api(self, seconds: float) -> float:
        return seconds / self.scale

    def since_start(self, api_time: float) -> float:
        """An ``api_time`` reading as clock seconds since the run started."""
        return api_time * self.scale - self.t0


class FakeClock:
    """Time that moves only on ``advance`` or ``sleep``; call it to read it.

    The limiter takes a ``clock`` and a ``sleep``; one ``FakeClock`` as both makes a
    probe due in 2 API seconds due after ``advance(2)``, whatever the machine does.
    """

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward; negative steps are a bug in the test."""
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds})")
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Let other tasks run once, then jump to the end of the sleep.

        Several tasks sleeping to the same moment end there together: time moves to
        ``max(now, start + seconds)``, never twice as far.
        """
        target = self.now + max(0.0, seconds)
        await asyncio.sleep(0)
        self.now = max(self.now, target)


class VirtualClock:
    """Virtual time for tests of whole runs: sleeps end in time order, at once.

    ``run(main)`` runs ``main`` on an event loop that, whenever every task waits and no
    I/O is ready, moves this clock to the earliest sleeper's wake time and wakes it.
    Only sleeps through this clock are virtual: a stray ``asyncio.sleep`` in the code
    under test waits for real, so a fast test also shows nothing else sleeps.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), wake))
        await wake

    def wake_next(self) -> bool:
        """Move to the earliest pending wake time and wake everyone due; False if none."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # its task was cancelled
        if not self._sleepers:
            return False
        self.now = max(self.now, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, wake = heapq.heappop(self._sleepers)
            if not wake.done():
                wake.set_result(None)
        return True

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to the end on a loop of its own whose idle moments move this clock."""
        loop = asyncio.SelectorEventLoop(_IdleSelector(selectors.DefaultSelector(), self))
        try:
            return loop.run_until_complete(main)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()


class _IdleSelector(selectors.BaseSelector):
    """A selector that, where the loop would block, wakes a virtual sleeper instead."""

    def __init__(self, real: selectors.BaseSelector, clock: VirtualClock) -> None:
        self._real = real
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0 or self._clock.wake_next():
            return ready
        return self._real.select(timeout)

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()
