"""Ways to run the simulator: in this event loop, in a thread, or as ``flowpipe sim``.

``running_sim`` is what async tests and the runner's embedded backend use;
``SimThread`` gives sync callers (benchmarks) the same thing on its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from flowpipe.errors import UsageError
from flowpipe.loopthread import LoopThread
from flowpipe.sim.app import BASE_PATH, create_app
from flowpipe.sim.config import SimConfig
from flowpipe.sim.state import SimState

__all__ = ["RunningSim", "SimThread", "run_server", "running_sim", "serve"]

SHUTDOWN_SECONDS = 1.0


class RunningSim:
    """A simulator that is serving: where it is, and its stats and reset hooks."""

    def __init__(self, base_url: str, state: SimState) -> None:
        self.base_url = base_url
        self._state = state

    @property
    def config(self) -> SimConfig:
        """The configuration it runs with."""
        return self._state.config

    def stats(self) -> dict[str, Any]:
        """The same dict ``GET /_sim/stats`` returns."""
        return self._state.stats()

    def reset(self) -> int:
        """Forget every mediaGenerationId, like ``POST /_sim/reset``; returns how many."""
        return self._state.registry.forget_all()

    def __repr__(self) -> str:
        return f"RunningSim(base_url={self.base_url!r})"


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{BASE_PATH}"


@contextlib.asynccontextmanager
async def running_sim(
    config: SimConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSim]:
    """Serve the simulator in the current event loop until the block ends.

    ``port=0`` picks a free port; ``base_url`` says which.
    """
    state = SimState(config)
    runner = web.AppRunner(
        create_app(config, state=state), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        yield RunningSim(_url(host, bound_port), state)
    finally:
        await runner.cleanup()


class SimThread(LoopThread):
    """The simulator on a background thread with its own event loop, for sync callers.

    ``with SimThread(config) as sim: sim.base_url`` — stopped when the block ends.
    """

    def __init__(self, config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__("flowpipe-sim")
        self.config = config
        self._host = host
        self._port = port
        self._sim: RunningSim | None = None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1/google-flow`` once started."""
        if self._sim is None:
            raise RuntimeError("SimThread is not running")
        return self._sim.base_url

    @contextlib.asynccontextmanager
    async def _serving(self) -> AsyncIterator[None]:
        async with running_sim(self.config, self._host, self._port) as sim:
            self._sim = sim
            yield

    def _call(self, func: Callable[[], Any]) -> Any:
        if self._loop is None or self._sim is None:
            raise RuntimeError("SimThread is not running")

        async def call() -> Any:
            return func()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    def start(self) -> SimThread:
        """Start serving; returns when ``base_url`` is known."""
        self._start()
        return self

    def stats(self) -> dict[str, Any]:
        """``GET /_sim/stats``, read on the server's loop."""
        return dict(self._call(lambda: self._sim.stats() if self._sim else {}))

    def reset(self) -> int:
        """Forget every mediaGenerationId."""
        return int(self._call(lambda: self._sim.reset() if self._sim else 0))

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._stop_serving()

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def serve(config: SimConfig, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; ``on_ready`` gets the base URL once listening."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with running_sim(config, host, port) as sim:
        on_ready(sim.base_url)
        await stop.wait()


def run_server(config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
    """``flowpipe sim``: print the base URL as the first stdout line, serve until stopped."""

    def ready(base_url: str) -> None:
        print(base_url, flush=True)
        print(
            f"flowpipe sim: api {config.dialect}, {len(config.all_accounts)} account(s), "
            f"capacity {config.capacity}, time scale {config.time_scale:g}; stop with Ctrl-C",
            file=sys.stderr,
            flush=True,
        )

    try:
        asyncio.run(serve(config, host, port, ready))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
