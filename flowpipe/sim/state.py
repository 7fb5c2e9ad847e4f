"""The simulator's memory: clock, capacity slots, credits, seeded decisions, stats.

All mutation happens on the server's event loop; ``stats()`` only reads. Decisions
(latency, moderation, faults, seeds) are hashes of the sim seed and the request's
content, so one request gets the same answer whatever else runs beside it. What is
kept per request (attempt counts, who made which bytes) is kept for the most recent
requests only (``flowpipe.sim.recent``), so a long run does not grow the simulator.
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

from flowpipe.dialects import Dialect, dialect
from flowpipe.sim.capacity import CapacityTrace, oracle_makespan
from flowpipe.sim.config import SimConfig
from flowpipe.sim.fife import FifeStore
from flowpipe.sim.ids import MediaRegistry
from flowpipe.sim.quotas import Quotas
from flowpipe.sim.recent import RecentCounts, RecentOwners
from flowpipe.sim.render import Renderer

__all__ = ["Decision", "Fault", "SimState", "unit"]

Fault = Literal["reset", "truncated"]
Outcome = Literal["ok", "unsafe", "moderated"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the simulator will do with one admitted generation."""

    latency: float  # API seconds the slot is held
    outcome: Outcome
    fault: Fault | None
    fault_at: float  # fraction of the latency after which a reset happens


def unit(seed: int, *parts: object) -> float:
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
    spoken: Dialect = field(init=False)
    quotas: Quotas = field(init=False)
    fife: FifeStore = field(default_factory=FifeStore)
    uploads_by_account: Counter[str] = field(default_factory=Counter)
    generated_reuploads: Counter[str] = field(default_factory=Counter)
    made_by: RecentOwners = field(default_factory=RecentOwners)  # image sha256 -> accounts
    fife_reads: Counter[str] = field(default_factory=Counter)  # ok, expired, tampered, unknown
    rate_limited: Counter[str] = field(default_factory=Counter)  # 429s by reason
    upscales: int = 0
    captcha_refusals: int = 0
    wall_start: float = 0.0
    _attempts: RecentCounts = field(default_factory=RecentCounts)
    _captcha_attempts: RecentCounts = field(default_factory=RecentCounts)
    _made: RecentCounts = field(default_factory=RecentCounts)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.capacity = CapacityTrace(self.config.capacity, self.config.seed)
        self.registry = MediaRegistry(self.config.seed, self.config.media_folder)
        self._rng = random.Random(self.config.seed)
        self.spoken = dialect(self.config.dialect)
        self.quotas = Quotas(self.config, self.spoken)

    # -- time ---------------------------------------------------------------
    def start(self) -> None:
        """Start API time at 0 (called when the server starts listening)."""
        self.started_at = self.clock()
        start = self.config.clock_start
        self.wall_start = time.time() if start is None else start

    def wall(self) -> float:
        """The simulator's UTC wall clock (epoch seconds): ``clock_start`` + API time."""
        return self.wall_start + self.now()

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

        With ``capacity_per_account`` the in-flight count is ``account``'s own.
        """
        now = self.now()
        if self.work.start is None:
            self.work.start = now
        per_account = self.config.capacity_per_account
        held = self.account_in_flight[account] if per_account else self.in_flight
        if held >= self.capacity.level_at(now):
            return False
        self.in_flight += 1
        self.account_in_flight[account] += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.config.credits is not None:
            self.credits_used += 1
        return True

    def release(self, *, refund: bool, account: str = "") -> None:
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
        attempt = self._attempts.bump(key)
        span = cfg.latency_max - cfg.latency_min
        latency = cfg.latency_min + span * unit(cfg.seed, "latency", key)
        outcome: Outcome = "ok"
        bad: Outcome = "unsafe" if content["model"] == "imagen-4" else "moderated"
        if marker or unit(cfg.seed, "moderation", key, attempt) < cfg.moderation_rate:
            outcome = bad
        elif nano_plain and unit(cfg.seed, "nano500", key, attempt) < cfg.nano_500_rate:
            outcome = "moderated"
        fault: Fault | None = None
        if unit(cfg.seed, "fault", key, attempt) < cfg.fault_rate:
            fault = "reset" if unit(cfg.seed, "fault-kind", key, attempt) < 0.5 else "truncated"
        return Decision(
            latency=latency,
            outcome=outcome,
            fault=fault,
            fault_at=unit(cfg.seed, "fault-at", key, attempt),
        )

    def captcha_refused(self, key: str, tries: int | None) -> bool:
        """Whether every one of the service's ``tries`` captcha attempts fails this time.

        Each try fails with ``--captcha-fail-rate``, drawn from the seed, the request's
        content and how many times it was sent, so a retry can pass.
        """
        rate = self.config.captcha_fail_rate
        if not rate:
            return False
        attempt = self._captcha_attempts.bump(key)
        tries = tries or self.spoken.captcha_default
        refused = all(
            unit(self.config.seed, "captcha", key, attempt, i) < rate for i in range(tries)
        )
        self.captcha_refusals += refused
        return refused

    def made_again(self, content: tuple[object, ...]) -> int:
        """How many times a generation with this content was answered before (then one more)."""
        return self._made.bump(*content)

    def note_made(self, sha256: str, account: str) -> None:
        """Remember that ``account`` generated these bytes (to spot needless re-uploads)."""
        self.made_by.add(sha256, account)

    def note_upload(self, sha256: str, account: str) -> None:
        """Count an upload, and whether the account itself had generated those bytes."""
        self.uploads += 1
        self.uploads_by_account[account] += 1
        if self.made_by.made(sha256, account):
            self.generated_reuploads[account] += 1

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
            # n accounts of C(t) each finish W when the integral of C covers W / n.
            share = len(self.config.accounts) if self.config.capacity_per_account else 1
            bound = oracle_makespan(
                self.capacity,
                start=self.work.start,
                work=self.work.total / share,
                longest=self.work.longest,
            )
            oracle["makespan_api_seconds"] = bound
            oracle["makespan_seconds"] = bound * scale
        return {
            "api_time": now,
            "time_scale": scale,
            "capacity": str(self.config.capacity),
            "capacity_now": self.capacity.level_at(now),
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
            "dialect": self.spoken.name,
            "wall_clock": self.wall_start + now,
            "uploads_by_account": dict(sorted(self.uploads_by_account.items())),
            "generated_reuploads": dict(sorted(self.generated_reuploads.items())),
            "fife": {k: self.fife_reads[k] for k in ("ok", "expired", "tampered", "unknown")},
            "upscales": self.upscales,
            "rate_limited": dict(sorted(self.rate_limited.items())),
            "paused_hits": dict(sorted(self.quotas.paused_hits.items())),
            "pauses": list(self.quotas.log),
            "captcha_refusals": self.captcha_refusals,
        }
