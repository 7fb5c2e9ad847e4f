"""Choosing the terminal display for a run, and saying which backend it talks to."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from flowpipe.engine.events import EventSink
from flowpipe.engine.progress import LiveProgress, PlainProgress
from flowpipe.engine.runner import RunOptions, choose_backend

__all__ = ["describe_backend", "open_display"]


def describe_backend(options: RunOptions) -> str:
    """One line for stderr, so nobody mistakes simulated images for real ones."""
    if options.frozen:
        return "--frozen: answering from the cache only; nothing will be sent"
    kind, base_url, _ = choose_backend(options)
    if base_url is None:
        return (
            "no USEAPI_TOKEN: running on the embedded simulator "
            "(placeholder images, nothing is billed)"
        )
    return f"backend {kind} at {base_url}"


@contextlib.contextmanager
def open_display(*, plain: bool = False) -> Iterator[list[EventSink]]:
    """A live panel when stderr is a terminal, else one plain line per event."""
    if plain or not sys.stderr.isatty():
        yield [PlainProgress(sys.stderr)]
        return
    with LiveProgress() as live:
        yield [live]
