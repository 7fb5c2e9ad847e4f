"""What a run has in the air: requests in flight, answers being stored, retries waiting.

A stop drains it: requests in flight get a grace period, then are abandoned; an answer
that has arrived is always stored, so a second Ctrl-C abandons requests, not answers
(and never leaves images on disk for a node it records as skipped).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from flowpipe.engine.clock import RunClock

__all__ = ["InFlight"]


class InFlight:
    """The tasks of one run's requests, and the timers of its retries."""

    def __init__(self, clock: RunClock, on_done: Callable[[asyncio.Task[None]], None]) -> None:
        self._clock = clock
        self._on_done = on_done
        self.tasks: set[asyncio.Task[None]] = set()
        self._storing: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def start(self, request: Coroutine[Any, Any, None]) -> None:
        """Run one request as a task of its own."""
        task = asyncio.create_task(request)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def store(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (keeping a result) as a task of its own that is never abandoned."""
        task = asyncio.create_task(work)
        self.tasks.add(task)
        self._storing.add(task)
        task.add_done_callback(self._finished)

    def storing(self) -> None:
        """The calling request has its answer: from here on it is not abandoned."""
        task = asyncio.current_task()
        assert task is not None
        self._storing.add(task)

    def later(self, api_delay: float, then: Callable[[], None]) -> None:
        """Call ``then`` after ``api_delay`` API seconds on the run's clock (if ``then``
        raises, the run hears of it as of a request that raised)."""
        timer = asyncio.create_task(self._later(api_delay, then))
        self._timers.add(timer)
        timer.add_done_callback(self._timer_done)

    def _timer_done(self, timer: asyncio.Task[None]) -> None:
        self._timers.discard(timer)
        if not timer.cancelled() and timer.exception() is not None:
            self._on_done(timer)

    async def _later(self, api_delay: float, then: Callable[[], None]) -> None:
        await self._clock.api_sleep(api_delay)
        then()

    def abandon(self) -> None:
        """Cancel every request still waiting for its answer."""
        for task in self.tasks - self._storing:
            task.cancel()

    async def drain(self, grace: float) -> None:
        """Let requests finish for up to ``grace`` clock seconds, then abandon the rest;
        retries still waiting are dropped."""
        timer = asyncio.ensure_future(self._clock.sleep(grace))
        try:
            while self.tasks and not timer.done():
                await asyncio.wait({*self.tasks, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        self.abandon()
        if self.tasks:  # the abandoned ones, and answers still being stored
            await asyncio.gather(*self.tasks, return_exceptions=True)
        for waiting in list(self._timers):
            waiting.cancel()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._storing.discard(task)
        self._on_done(task)
