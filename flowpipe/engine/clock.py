"""A fake clock: the limiter's testing mode, so tests never wait for real time.

The limiter takes a ``clock`` (seconds, monotonic) and a ``sleep`` coroutine. Passing
one ``FakeClock`` as both makes time move only when someone sleeps or calls
``advance``, so a probe that is due in 2 API seconds is due after ``advance(2)``,
whatever the machine is doing.
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """Time that moves only on ``advance`` or ``sleep``; call it to read it."""

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
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
