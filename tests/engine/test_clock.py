"""The run's clock owns the time scale; virtual time ends sleeps in order, at once."""

from __future__ import annotations

import asyncio

import pytest

from flowpipe.engine.clock import FakeClock, RunClock, VirtualClock


def test_the_run_clock_converts_between_api_and_clock_seconds() -> None:
    source = FakeClock(100.0)
    clock = RunClock(source, scale=0.01)
    assert clock.now() == 0.0
    source.advance(0.5)
    assert clock.now() == pytest.approx(0.5)  # clock seconds since the run started
    assert clock.api_time() == pytest.approx(100.5 / 0.01)
    assert clock.to_clock(7.0) == pytest.approx(0.07)
    assert clock.to_api(0.07) == pytest.approx(7.0)
    assert clock.since_start(clock.api_time()) == pytest.approx(0.5)


@pytest.mark.parametrize("scale", [0.0, -1.0], ids=["zero", "negative"])
def test_the_run_clock_refuses_a_scale_that_is_not_positive(scale: float) -> None:
    with pytest.raises(ValueError, match="more than 0"):
        RunClock(FakeClock(), scale=scale)


def test_api_sleep_waits_scaled_time_on_the_source() -> None:
    virtual = VirtualClock()

    async def main() -> float:
        clock = RunClock(virtual, scale=0.02)
        await clock.api_sleep(10.0)
        return clock.now()

    assert virtual.run(main()) == pytest.approx(0.2)


def test_virtual_sleeps_end_in_time_order_and_time_never_goes_back() -> None:
    virtual = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await virtual.sleep(seconds)
        woke.append((name, virtual.time()))

    async def main() -> None:
        await asyncio.gather(sleeper("ten", 10), sleeper("one", 1), sleeper("five", 5),
                             sleeper("now", 0), sleeper("five-too", 5))

    virtual.run(main())
    assert woke == [("now", 0.0), ("one", 1.0), ("five", 5.0), ("five-too", 5.0),
                    ("ten", 10.0)]


def test_a_cancelled_virtual_sleep_does_not_move_time() -> None:
    virtual = VirtualClock()

    async def main() -> float:
        long = asyncio.ensure_future(virtual.sleep(1000))
        await virtual.sleep(1)
        long.cancel()
        await asyncio.gather(long, return_exceptions=True)
        await virtual.sleep(2)
        return virtual.time()

    assert virtual.run(main()) == 3.0


def test_virtual_time_waits_for_real_work_in_threads() -> None:
    """A thread's result arrives through real I/O; the loop does not lose it."""
    virtual = VirtualClock()

    async def main() -> int:
        return await asyncio.to_thread(sum, range(1000))

    assert virtual.run(main()) == sum(range(1000))
