"""Run events reach every sink; a sink that raises is logged once and stops nothing."""

from __future__ import annotations

import logging

import pytest

from flowpipe.events import Broadcast, Event, NodeCached


class _Broken:
    def handle(self, event: Event) -> None:
        raise ValueError(f"cannot show {event}")


class _Keeper:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


def test_a_sink_that_raises_is_logged_once_and_the_next_sinks_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keeper = _Keeper()
    sinks = Broadcast([_Broken(), keeper])
    caplog.set_level(logging.DEBUG, logger="flowpipe.events")
    for n in range(3):
        sinks(NodeCached(float(n), f"node{n}"))
    assert [e.node for e in keeper.events] == ["node0", "node1", "node2"]  # type: ignore[union-attr]
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "cannot show" in caplog.records[0].exc_text  # type: ignore[operator]


def test_an_exception_that_is_not_an_error_still_goes_through() -> None:
    class Interrupting:
        def handle(self, event: Event) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Broadcast([Interrupting()])(NodeCached(0.0, "a"))
