"""The simulator's memory: clock, capacity slots, credits, seeded decisions, stats.

All mutation happens on the server's event loop; ``stats()`` only reads. Decisions
(latency, moderation, faults, seeds) are hashes of the sim seed and the request's
content, so one request gets the same answer whatever else runs beside it.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flowpipe.sim.capacity import CapacityTrace, oracle_makespan
from flowpipe.sim.config import SimConfig
from flowpipe.sim.ids import MediaRegistry
from flowpipe.sim.render import Renderer

__all__ = ["Decision", "Fault", "SimState"]

Fault = Literal["reset", "truncated"]
Outcome = Literal["ok", "unsafe", "moderated"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the simulator will do with one admitted generation."""

    latency: float  # API seconds the slot is held
    outcome: Outcome
    fault: Fault | None
    fault_at: float  # fraction of the latency after which a reset happens


def _unit(seed: int, *parts: object) -> float:
    """A stable number in [0, 1) from the seed and some labels."""
    raw = hashlib.blake2b(":".join([str(seed), *map(str, parts)]).encode(), digest_size=8)
    return int.from_bytes(raw.digest(), "big") / 2**64


@dataclass(slots=True)
class _Work:
    """Successful generations seen so far, for the oracle bound."""

    start: float | None = None
    total: float = 0.0
    longest: float = 0.0
    jobs: int = 0


@dataclass(slots=True)
class SimState:
    """Mutable server state; one per application."""

    config: SimConfig
    clock: Callable[[], float] = time.monotonic
    capacity: CapacityTrace = field(init=False)
    registry: MediaRegistry = field(init=False)
    renderer: Renderer = field(default_factory=Renderer)
    statuses: Counter[str] = field(default_factory=Counter)
    image_statuses: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    generations: int = 0
    images: int = 0
    uploads: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    account_in_flight: Counter[str] = field(default_factory=Counter)
    credits_used: int = 0
    started_at: float | None = None
    work: _Work = field(default_factory=_Work)
    _attempts: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.capacity = CapacityTrace(self.config.capacity, self.config.seed)
        self.registry = MediaRegistry(self.config.seed)
        self._rng = random.Random(self.config.seed)

    # -- time ---------------------------------------------------------------
    def start(self) -> None:
        """Start API time at 0 (called when the server starts listening)."""
        self.started_at = self.clock()

    def now(self) -> float:
        """API seconds since the start: real elapsed seconds / time scale."""
        if self.started_at is None:
            return 0.0
        return (self.clock() - self.started_at) / self.config.time_scale

    # -- admission ------------------------------------------------------------
    def credits_left(self) -> int | None:
        """Generations still allowed before 402 (None = unlimited)."""
        if self.config.credits is None:
            return None
        return max(0, self.config.credits - self.credits_used)

    def try_admit(self, account: str = "") -> bool:
        """Take a capacity slot if in-flight < C(now); note the first valid arrival.

        With ``capacity_per_account`` the count is the account's own.
        """
        now = self.now()
        if self.work.start is None:
            self.work.start = now
        per_account = self.config.capacity_per_account
        busy = self.account_in_flight[account] if per_account else self.in_flight
        if busy >= self.capacity.level_at(now):
            return False
        self.account_in_flight[account] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.config.credits is not None:
            self.credits_used += 1
        return True

    def release(self, account: str = "", *, refund: bool) -> None:
        """Give the slot back; ``refund`` returns the credit of a failed generation."""
        self.in_flight -= 1
        self.account_in_flight[account] -= 1
        if refund and self.config.credits is not None:
            self.credits_used -= 1

    def reject_status(self) -> int:
        """429 or 503 for a capacity rejection, per ``--reject-status``."""
        mode = self.config.reject_status
        if mode == "mixed":
            return 429 if self._rng.random() < 0.5 else 503
        return int(mode)

    def pick_seed(self) -> int:
        """A seed for a request that sent none (seeded sequence, like the API's choice)."""
        return self._rng.randrange(2**31)

    def decide(self, content: dict[str, Any], *, marker: bool, nano_plain: bool) -> Decision:
        """Latency, moderation and fault for this attempt of this request content.

        Latency depends on the content only (so the oracle's work is well defined);
        the other draws also count attempts of equal content, so a retry can succeed.
        """
        cfg = self.config
        key = json.dumps(content, sort_keys=True, separators=(",", ":"))
        attempt = self._attempts[key]
        self._attempts[key] += 1
        span = cfg.latency_max - cfg.latency_min
        latency = cfg.latency_min + span * _unit(cfg.seed, "latency", key)
        outcome: Outcome = "ok"
        bad: Outcome = "unsafe" if content["model"] == "imagen-4" else "moderated"
        if marker or _unit(cfg.seed, "moderation", key, attempt) < cfg.moderation_rate:
            outcome = bad
        elif nano_plain and _unit(cfg.seed, "nano500", key, attempt) < cfg.nano_500_rate:
            outcome = "moderated"
        fault: Fault | None = None
        if _unit(cfg.seed, "fault", key, attempt) < cfg.fault_rate:
            fault = "reset" if _unit(cfg.seed, "fault-kind", key, attempt) < 0.5 else "truncated"
        return Decision(
            latency=latency,
            outcome=outcome,
            fault=fault,
            fault_at=_unit(cfg.seed, "fault-at", key, attempt),
        )

    def record_status(self, status: int, *, images_endpoint: bool) -> None:
        """Count an API answer by status (``images_endpoint`` also counts it for /images)."""
        self.statuses[str(status)] += 1
        if images_endpoint:
            self.image_statuses[str(status)] += 1

    def record_success(self, latency: float, images: int) -> None:
        """Count a 200 generation and add its service time to the oracle's work."""
        self.generations += 1
        self.images += images
        self.work.total += latency
        self.work.longest = max(self.work.longest, latency)
        self.work.jobs += 1

    # -- reporting --------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """The body of ``GET /_sim/stats``."""
        now = self.now()
        scale = self.config.time_scale
        oracle: dict[str, Any] = {
            "jobs": self.work.jobs,
            "work_api_seconds": self.work.total,
            "longest_job_api_seconds": self.work.longest,
            "start_api_seconds": self.work.start,
            "makespan_api_seconds": 0.0,
            "makespan_seconds": 0.0,
        }
        if self.work.start is not None and self.work.jobs:
            # N accounts of C(t) each hold N times the work of one in the same time
            accounts = len(self.config.all_accounts) if self.config.capacity_per_account else 1
            bound = oracle_makespan(
                self.capacity,
                start=self.work.start,
                work=self.work.total / accounts,
                longest=self.work.longest,
            )
            oracle["makespan_api_seconds"] = bound
            oracle["makespan_seconds"] = bound * scale
        return {
            "api_time": now,
            "time_scale": scale,
            "capacity": str(self.config.capacity),
            "capacity_now": self.capacity.level_at(now),
            "capacity_per_account": self.config.capacity_per_account,
            "capacity_trace": [[t, c] for t, c in self.capacity.changes_until(now)],
            "statuses": dict(sorted(self.statuses.items())),
            "images_statuses": dict(sorted(self.image_statuses.items())),
            "faults": dict(sorted(self.faults.items())),
            "images_requests": sum(self.image_statuses.values()) + sum(self.faults.values()),
            "generations": self.generations,
            "images": self.images,
            "uploads": self.uploads,
            "in_flight": self.in_flight,
            "max_concurrent": self.max_in_flight,
            "credits_left": self.credits_left(),
            "media_ids": len(self.registry),
            "oracle": oracle,
        }
