"""A server on a background thread with its own event loop, for sync callers and tests.

The embedded simulator (``flowpipe.sim.SimThread``) and the review server
(``flowpipe.review.server.ReviewServer``) both serve from a daemon thread: the starting
thread waits until the server listens (or re-raises what stopped it from starting), and
stopping sets an event on the server's loop and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import AbstractAsyncContextManager

__all__ = ["LoopThread"]


class LoopThread:
    """Serves ``_serving()`` (an async context manager) until ``stop``."""

    def __init__(self, name: str) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _serving(self) -> AbstractAsyncContextManager[object]:
        """What is served while the thread runs: listening once entered."""
        raise NotImplementedError

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with self._serving():
            self._ready.set()
            await self._stop.wait()

    def _start(self) -> None:
        """Start serving; returns once listening, or raises why it could not start."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _stop_serving(self, timeout: float | None = None) -> None:
        """Stop serving and wait (up to ``timeout`` s) for the thread to end."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout)
