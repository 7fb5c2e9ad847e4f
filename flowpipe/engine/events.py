"""Run events: the one record of what happened, read by every display.

The progress display, the JSON summary and ``run.json`` (and so the report) are all
sinks of the same events, so none of them re-computes what another knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
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
    "Rejected",
    "RunStarted",
    "RunStopping",
    "Uploaded",
    "WindowChanged",
    "broadcast",
]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a node failed, in a form JSON and people can read."""

    type: str
    message: str
    status: int | None = None
    reason: str | None = None
    hint: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class RunStarted:
    t: float
    nodes: int
    backend: str


@dataclass(frozen=True, slots=True)
class NodeCached:
    t: float
    node: str


@dataclass(frozen=True, slots=True)
class NodeStarted:
    t: float
    node: str
    account: str
    attempt: int
    model: str


@dataclass(frozen=True, slots=True)
class NodeRetried:
    t: float
    node: str
    account: str
    error: ErrorInfo
    delay: float
    action: str  # "retry", "switch-model", "re-upload", "other-account"


@dataclass(frozen=True, slots=True)
class NodeDone:
    t: float
    node: str
    account: str
    seconds: float
    attempts: int
    model_used: str


@dataclass(frozen=True, slots=True)
class NodeFailed:
    t: float
    node: str
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class NodeSkipped:
    t: float
    node: str
    because: str


@dataclass(frozen=True, slots=True)
class Uploaded:
    t: float
    account: str
    sha256: str


@dataclass(frozen=True, slots=True)
class WindowChanged:
    t: float
    account: str
    window: int
    reason: str


@dataclass(frozen=True, slots=True)
class InflightChanged:
    t: float
    account: str
    in_flight: int


@dataclass(frozen=True, slots=True)
class Rejected:
    t: float
    account: str
    status: int | None


@dataclass(frozen=True, slots=True)
class RunStopping:
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
    | Uploaded
    | WindowChanged
    | InflightChanged
    | Rejected
    | RunStopping
)


class EventSink(Protocol):
    """Anything that wants to hear about a run."""

    def handle(self, event: Event) -> None: ...


def broadcast(sinks: Sequence[EventSink], event: Event) -> None:
    """Give ``event`` to every sink, in order."""
    for sink in sinks:
        sink.handle(event)
