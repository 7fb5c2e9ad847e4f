"""What ``flowpipe.run`` returns: how the run ended, and what became of every node.

Plain frozen values with no engine inside, so they can be kept, compared and
pickled; ``run.json`` in the output folder holds the same facts for later readers.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flowpipe.errors import ErrorInfo

__all__ = ["FinalState", "JsonPacker", "NodeResult", "Outcome", "PackedJson", "RunResult"]

FinalState = Literal["done", "failed", "skipped", "waiting"]
Outcome = Literal["done", "failed", "stopped", "interrupted", "waiting"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeResult:
    """One node of the plan after the run.

    ``state`` is ``done`` (made now or answered by the cache: ``cache_hit``),
    ``failed``, ``skipped`` (an upstream node did not finish, or the run stopped) or
    ``waiting`` (it uses ``STEP.pick`` and the pick is missing or stale, or an upstream
    node waits: pick with ``flowpipe review OUT``, then run again);
    ``reason`` says why when it is not done, ``error`` has the details. ``key`` is
    the request's cache key once known (None when its references never existed).
    ``images`` are the files written for it, in index order. ``change`` says why it
    ran, ``cached``, ``new`` or ``changed`` (None when it was never reached), and
    ``why`` what changed since the lock, in short strings.
    """

    id: str
    step: str
    variant: Mapping[str, str]
    state: FinalState
    reason: str | None
    cache_hit: bool
    key: str | None
    images: tuple[Path, ...]
    model_used: str | None = None
    error: ErrorInfo | None = None
    change: Literal["cached", "new", "changed"] | None = None
    why: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """How a run ended and where its outputs are.

    ``ok`` is True when every node is done. ``exit_code`` is what ``flowpipe run``
    exits with (0 done, 1 some nodes failed, 3 stopped by the API, 5 waiting for
    review, 130 interrupted); ``outcome`` is ``waiting`` when nothing failed but some
    nodes wait for a pick, and ``waiting`` lists them.
    ``nodes`` maps node id to ``NodeResult`` in plan order; ``images`` lists every image
    written, in plan order. ``summary`` has the counts, ``remote`` the shared cache's
    (None: no remote), and ``run_info`` the whole run.json the run wrote (parsed on
    first use from ``run_json``). ``lock`` is the lock file the run wrote (None: none asked
    for), ``lock_note`` why it is not the one beside the recipe; ``report`` the
    report's path when one was written; ``removed`` how many files the run removed
    because no node of the recipe makes them any more.
    """

    ok: bool
    exit_code: int
    nodes: Mapping[str, NodeResult]
    images: tuple[Path, ...]
    outcome: Outcome
    message: str | None
    out: Path
    summary: Mapping[str, int]
    run_json: PackedJson = field(repr=False)
    remote: Mapping[str, Any] | None = None
    lock: Path | None = None
    lock_note: str | None = None
    report: Path | None = None
    removed: int = 0

    @property
    def run_info(self) -> dict[str, Any]:
        """The run's run.json as plain JSON (the same object on every call)."""
        return self.run_json.value()

    @property
    def waiting(self) -> tuple[str, ...]:
        """The nodes waiting for review, in plan order."""
        return tuple(nid for nid, node in self.nodes.items() if node.state == "waiting")


class PackedJson:
    """A JSON object kept as compressed text and parsed once, on first use.

    Why: a 50,000-node run's run.json is about 60 MB as Python objects and about 1 MB
    compressed, and most callers of ``flowpipe.run`` never look at it. Equal when the
    texts are; pickles as its text.
    """

    __slots__ = ("_value", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data  # zlib of the UTF-8 text
        self._value: dict[str, Any] | None = None

    def value(self) -> dict[str, Any]:
        if self._value is None:
            import json  # here: `flowpipe --help` loads this module, and json is not cheap

            value = json.loads(zlib.decompress(self.data))
            if not isinstance(value, dict):
                raise TypeError(f"expected a JSON object, not {type(value).__name__}")
            self._value = value
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedJson) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"PackedJson({len(self.data)} bytes)"

    def __getstate__(self) -> bytes:
        return self.data

    def __setstate__(self, data: bytes) -> None:
        self.data, self._value = data, None


class JsonPacker:
    """Compresses text written a piece at a time (a tee beside the file being written)."""

    def __init__(self) -> None:
        self._zip = zlib.compressobj(1)
        self._pending: list[str] = []
        self._size = 0
        self._out: list[bytes] = []

    def write(self, text: str) -> None:
        self._pending.append(text)
        self._size += len(text)
        if self._size >= 1 << 16:  # zlib per call costs more than the small writes do
            self._drain()

    def packed(self) -> PackedJson:
        self._drain()
        return PackedJson(b"".join([*self._out, self._zip.flush()]))

    def _drain(self) -> None:
        self._out.append(self._zip.compress("".join(self._pending).encode("utf-8")))
        self._pending.clear()
        self._size = 0
