"""What ``flowpipe.run`` returns: how the run ended, and what became of every node.

Plain frozen values with no engine inside, so they can be kept, compared and
pickled; ``run.json`` in the output folder holds the same facts for later readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flowpipe.errors import ErrorInfo

__all__ = ["FinalState", "NodeResult", "Outcome", "RunResult"]

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
    written, in plan order. ``summary`` has the counts and ``run_info`` the whole
    run.json of the run. ``lock`` is the lock file the run wrote (None: none asked
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
    run_info: Mapping[str, Any] = field(repr=False)
    lock: Path | None = None
    lock_note: str | None = None
    report: Path | None = None
    removed: int = 0

    @property
    def waiting(self) -> tuple[str, ...]:
        """The nodes waiting for review, in plan order."""
        return tuple(nid for nid, node in self.nodes.items() if node.state == "waiting")
