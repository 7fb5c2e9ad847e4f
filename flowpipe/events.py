"""Run events: the one record of what happened while a run goes, read by every display.

The progress display, the JSON summary and ``run.json`` (and so the report) are all
sinks of the same events, so none of them re-computes what another knows. A caller of
``flowpipe.run`` gets them too: a plain function of one ``Event``, or any object with
``handle(event)`` (an ``EventSink``). Every event is a frozen dataclass whose ``t`` is
seconds since the run started (docs/python.md lists them). A sink that raises is a bug
in a display, never the end of a run: ``Broadcast`` logs it once and goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from flowpipe.errors import ErrorInfo

__all__ = [
    "AccountPaused",
    "AccountResumed",
    "Broadcast",
    "ErrorInfo",
    "Event",
    "EventSink",
    "InflightChanged",
    "NodeCached",
    "NodeDone",
    "NodeFailed",
    "NodeRetried",
    "NodeSkipped",
    "NodeStarted",
    "NodeWaiting",
    "Rejected",
    "RunStarted",
    "RunStopping",
    "Uploaded",
    "WindowChanged",
]

log = logging.getLogger("flowpipe.events")


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The run began: ``nodes`` in the plan, on the ``backend`` kind (sim or useapi);
    ``steps`` is each step's id and node count, in recipe order, ``recipe`` its name.

    ``warnings`` are the plan's (``file:line:col: warning: ...``), shown before anything
    is sent, as ``validate`` and ``plan`` show them.
    """

    t: float
    nodes: int
    backend: str
    warnings: tuple[str, ...] = ()
    steps: tuple[tuple[str, int], ...] = ()
    recipe: str = ""


@dataclass(frozen=True, slots=True)
class NodeCached:
    """``node`` was answered by the cache: nothing was sent for it."""

    t: float
    node: str


@dataclass(frozen=True, slots=True)
class NodeStarted:
    """A request for ``node`` went to ``account`` (``attempt`` 1 is the first).

    ``state`` says why it is sent at all, ``new`` or ``changed`` (empty when not known),
    and ``why`` what changed since the lock, in short strings (``flowpipe.why``).
    """

    t: float
    node: str
    account: str
    attempt: int
    model: str
    state: str = ""
    why: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeRetried:
    """``node`` will be tried again in ``delay`` seconds; ``action`` says how
    (``retry``, ``switch-model``, ``re-upload``, ``other-account``, or ``paused``: its
    account or model was paused and it waits for one that can take it)."""

    t: float
    node: str
    account: str
    error: ErrorInfo
    delay: float
    action: str  # "retry", "switch-model", "re-upload", "other-account", "paused"


@dataclass(frozen=True, slots=True)
class NodeDone:
    """``node`` was made: ``seconds`` for its last request, ``attempts`` in all."""

    t: float
    node: str
    account: str
    seconds: float
    attempts: int
    model_used: str


@dataclass(frozen=True, slots=True)
class NodeFailed:
    """``node`` failed for good; ``error`` says why and what to try."""

    t: float
    node: str
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class NodeSkipped:
    """``node`` will not be made this run: an upstream node did not finish, or the
    run stopped first (``because``)."""

    t: float
    node: str
    because: str


@dataclass(frozen=True, slots=True)
class NodeWaiting:
    """``node`` waits for review: a ``STEP.pick`` it uses has no pick yet, or a stale one
    (``stale``: the picked node was re-made), or an upstream node waits (``because``)."""

    t: float
    node: str
    because: str
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Uploaded:
    """Reference bytes (``sha256``) were uploaded to ``account``."""

    t: float
    account: str
    sha256: str


@dataclass(frozen=True, slots=True)
class WindowChanged:
    """``account``'s concurrency window is now ``window`` (``reason``)."""

    t: float
    account: str
    window: int
    reason: str


@dataclass(frozen=True, slots=True)
class InflightChanged:
    """``account`` has ``in_flight`` requests out."""

    t: float
    account: str
    in_flight: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """``account`` answered over capacity (429, 503; ``status`` None: a timeout or reset)."""

    t: float
    account: str
    status: int | None


@dataclass(frozen=True, slots=True)
class AccountPaused:
    """The API took ``account`` out (2026-07 429 reasons): nothing goes there until
    ``until`` (seconds since the run started, like ``t``). ``model`` None: the whole
    account; else only that model on it. ``reason`` is the API's code. Not a capacity
    signal: no window shrinks."""

    t: float
    account: str
    model: str | None
    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class AccountResumed:
    """The pause of ``account`` (or of ``model`` on it) is over: it takes requests again."""

    t: float
    account: str
    model: str | None


@dataclass(frozen=True, slots=True)
class RunStopping:
    """The run sends nothing more; requests in flight may still finish."""

    t: float
    reason: str
    error: ErrorInfo | None


Event = (
    RunStarted
    | NodeCached
    | NodeStarted
    | NodeRetried
    | NodeDone
    | NodeFailed
    | NodeSkipped
    | NodeWaiting
    | Uploaded
    | WindowChanged
    | InflightChanged
    | Rejected
    | AccountPaused
    | AccountResumed
    | RunStopping
)


class EventSink(Protocol):
    """Anything that wants to hear about a run."""

    def handle(self, event: Event) -> None: ...


class Broadcast:
    """One run's sinks: each event goes to every sink, in order.

    A sink that raises does not stop the others, nor the run: its first failure is
    logged as a warning with the traceback, later ones only at debug level, and it
    keeps getting events (a display that trips on one event may show the next).
    """

    __slots__ = ("_failed", "sinks")

    def __init__(self, sinks: Iterable[EventSink] = ()) -> None:
        self.sinks = list(sinks)
        self._failed: set[int] = set()  # indexes of the sinks that raised

    def __iter__(self) -> Iterator[EventSink]:
        return iter(self.sinks)

    def __call__(self, event: Event) -> None:
        for index, sink in enumerate(self.sinks):
            try:
                sink.handle(event)
            except Exception:
                first = index not in self._failed
                self._failed.add(index)
                log.log(logging.WARNING if first else logging.DEBUG,
                        "progress sink %r raised on %s; the run goes on", sink,
                        type(event).__name__, exc_info=first)
