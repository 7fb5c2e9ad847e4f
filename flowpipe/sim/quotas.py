"""The 2026-07 quotas on demand: who is out, why, until when (all in API time).

- ``--throttle EMAIL:T``: the first request that reaches EMAIL at API second T or
  later is answered ``PUBLIC_ERROR_USER_REQUESTS_THROTTLED`` and the account is out
  for the dialect's pause (30 minutes); once.
- ``--account-quota N``: after N generations on an account it is answered
  ``PUBLIC_ERROR_USER_QUOTA_REACHED`` and out for the same pause; its count restarts.
- ``--model-quota MODEL:N``: after N generations of MODEL on an account in one UTC
  day (of the simulator's wall clock, ``clock_start`` + API time), that model on that
  account answers ``PUBLIC_ERROR_PER_MODEL_DAILY_QUOTA_REACHED`` until midnight UTC.

While out, every request that still reaches the account (or the model on it) gets the
same 429 again and is counted in ``paused_hits``: a client that honours the pause
sends none. Without an email the simulator balances over the accounts that are not
out; with none left it answers ``no_eligible_account`` and ``Retry-After``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flowpipe.dialects import (
    NO_ELIGIBLE_ACCOUNT,
    PER_MODEL_DAILY_QUOTA_REACHED,
    USER_QUOTA_REACHED,
    USER_REQUESTS_THROTTLED,
    Dialect,
)
from flowpipe.sim.config import SimConfig

__all__ = ["Quotas", "Refusal"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """A 429 with a reason: the code, and the seconds until it lifts (Retry-After)."""

    reason: str
    retry_after: float


@dataclass(slots=True)
class _Pause:
    reason: str
    until: float  # API seconds


@dataclass(slots=True)
class Quotas:
    """Pauses and counters per account (and per account and model)."""

    config: SimConfig
    spoken: Dialect
    accounts: dict[str, _Pause] = field(default_factory=dict)
    models: dict[tuple[str, str], _Pause] = field(default_factory=dict)
    day_counts: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    account_counts: Counter[str] = field(default_factory=Counter)
    throttled: set[str] = field(default_factory=set)
    paused_hits: Counter[str] = field(default_factory=Counter)
    log: list[dict[str, Any]] = field(default_factory=list)
    _turn: int = 0
    _limits: dict[str, int] = field(init=False)
    _throttle_at: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self._limits = {
            self.spoken.canonical_model(model) or model: count
            for model, count in self.config.model_quotas
        }
        self._throttle_at = {email.lower(): t for email, t in self.config.throttles}

    def refusal(self, email: str, model: str | None, now: float, wall: float) -> Refusal | None:
        """The 429 this request gets on ``email`` before it may be admitted, if any."""
        pause = self.accounts.get(email)
        if pause is not None and now < pause.until:
            self.paused_hits[email] += 1
            return Refusal(pause.reason, pause.until - now)
        if model is not None:
            out = self.models.get((email, model))
            if out is not None and now < out.until:
                self.paused_hits[email] += 1
                return Refusal(out.reason, out.until - now)
        start = self._throttle_at.get(email.lower())
        if start is not None and now >= start and email not in self.throttled:
            self.throttled.add(email)
            return self._pause_account(email, USER_REQUESTS_THROTTLED, now)
        limit = self.config.account_quota
        if limit is not None and self.account_counts[email] >= limit:
            self.account_counts[email] = 0
            return self._pause_account(email, USER_QUOTA_REACHED, now)
        if model is not None and model in self._limits:
            day = math.floor(wall / DAY)
            if self.day_counts[(email, model, day)] >= self._limits[model]:
                until = now + (day + 1) * DAY - wall
                self.models[(email, model)] = _Pause(PER_MODEL_DAILY_QUOTA_REACHED, until)
                self._note(email, PER_MODEL_DAILY_QUOTA_REACHED, now, until, model)
                return Refusal(PER_MODEL_DAILY_QUOTA_REACHED, until - now)
        return None

    def count(self, email: str, model: str, wall: float, step: int = 1) -> None:
        """Count an admitted generation (``step`` -1 gives it back when it failed)."""
        self.account_counts[email] += step
        self.day_counts[(email, model, math.floor(wall / DAY))] += step

    def pick(self, accounts: tuple[str, ...], model: str, now: float) -> str | Refusal:
        """An account for a request without email: balanced over those not out."""
        free = [a for a in accounts if self._free(a, model, now)]
        if not free:
            return Refusal(NO_ELIGIBLE_ACCOUNT, max(1.0, self._next_free(accounts, model, now)))
        self._turn += 1
        return free[self._turn % len(free)]

    def _free(self, email: str, model: str, now: float) -> bool:
        pause = self.accounts.get(email)
        out = self.models.get((email, model))
        return (pause is None or now >= pause.until) and (out is None or now >= out.until)

    def _next_free(self, accounts: tuple[str, ...], model: str, now: float) -> float:
        waits = []
        for email in accounts:
            ends = [p.until for p in (self.accounts.get(email), self.models.get((email, model)))
                    if p is not None and p.until > now]
            waits.append(max(ends) - now if ends else 0.0)
        return min(waits, default=0.0)

    def _pause_account(self, email: str, reason: str, now: float) -> Refusal:
        until = now + (self.spoken.rate_reasons[reason].pause or 0.0)
        self.accounts[email] = _Pause(reason, until)
        self._note(email, reason, now, until, None)
        return Refusal(reason, until - now)

    def _note(self, email: str, reason: str, now: float, until: float, model: str | None) -> None:
        self.log.append({"account": email, "reason": reason, "model": model,
                         "from": round(now, 3), "until": round(until, 3)})
