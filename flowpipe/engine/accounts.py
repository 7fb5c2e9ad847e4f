"""The accounts a run may use, each with its own limiter, and their fate.

An account is dropped on 404 (not configured) or 596 (session refresh failed); the
run goes on with the others. In 2026-07 an account, or one model on it, can also be
paused by a quota answer (``flowpipe.engine.pauses``): it takes nothing until the
pause ends, and its limiter is left alone. Limiter events and pauses become run
events here, so the report and the progress display see them per account.
``find_accounts`` decides which accounts a run uses: the caller's, the recipe's, or
every healthy one the API lists (``GET /accounts``, retried like any other call).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

from flowpipe.api import FlowClient
from flowpipe.engine.clock import RunClock
from flowpipe.engine.limiter import (
    AdaptiveLimiter,
    FixedLimiter,
    Limiter,
    LimiterConfig,
    LimiterEvent,
)
from flowpipe.engine.pauses import SLACK, Pauses
from flowpipe.engine.retry import RetryPolicy, retrying
from flowpipe.errors import ErrorInfo, SessionError
from flowpipe.events import (
    AccountPaused,
    AccountResumed,
    Broadcast,
    Event,
    EventSink,
    InflightChanged,
    Rejected,
    WindowChanged,
)

__all__ = ["AccountPool", "find_accounts"]

log = logging.getLogger("flowpipe.engine")


class AccountPool:
    """Accounts in use, one limiter each; ``fixed_window`` replaces adaptation."""

    def __init__(
        self,
        accounts: Sequence[str],
        *,
        clock: RunClock,
        sinks: Sequence[EventSink] | Broadcast = (),
        limiter_config: LimiterConfig | None = None,
        fixed_window: int | None = None,
    ) -> None:
        if not accounts:
            raise ValueError("an account pool needs at least one account")
        self.accounts = list(dict.fromkeys(accounts))
        self.sinks = sinks if isinstance(sinks, Broadcast) else Broadcast(sinks)
        self.dropped: dict[str, ErrorInfo] = {}
        self.pauses = Pauses()
        self._clock = clock
        self._limiters: dict[str, Limiter] = {}
        for account in self.accounts:
            on_event = self._forward(account)
            limiter: Limiter
            if fixed_window is not None:
                limiter = FixedLimiter(fixed_window, clock=clock.api_time, sleep=clock.api_sleep,
                                       on_event=on_event)
            else:
                limiter = AdaptiveLimiter(limiter_config, clock=clock.api_time,
                                          sleep=clock.api_sleep, on_event=on_event)
            self._limiters[account] = limiter

    def _emit(self, event: Event) -> None:
        self.sinks(event)

    def _forward(self, account: str) -> Callable[[LimiterEvent], None]:
        def on_event(ev: LimiterEvent) -> None:
            if ev.kind != "rejection":
                t = self._clock.since_start(ev.at)
                self._emit(WindowChanged(t, account, ev.window, ev.reason))

        return on_event

    def limiter(self, account: str) -> Limiter:
        return self._limiters[account]

    def usable(self, account: str) -> bool:
        return account not in self.dropped

    def usable_accounts(self) -> list[str]:
        return [a for a in self.accounts if a not in self.dropped]

    def drop(self, account: str, why: ErrorInfo) -> int:
        """Stop using ``account``; return how many usable accounts remain."""
        if account not in self.dropped:
            self.dropped[account] = why
            log.warning("dropping account %s: %s", account, why.message)
        return len(self.usable_accounts())

    # -- quota pauses (2026-07) ----------------------------------------------------------

    def pause(self, account: str, model: str | None, seconds: float, reason: str) -> bool:
        """Take ``account`` (or ``model`` on it) out for ``seconds`` API seconds.

        Returns False when a pause at least as long is already in force (nothing new
        to wait for); the limiter is not told: a pause is not a capacity signal.
        """
        until = self._clock.api_time() + max(0.0, seconds)
        pause = self.pauses.add(account, model, reason, until)
        if pause is None:
            return False
        what = f"{model} on {account}" if model else account
        log.info("%s paused for %.0f API seconds: %s", what, seconds, reason)
        self._emit(AccountPaused(self._clock.now(), account, model,
                                 self._clock.since_start(until), reason))
        return True

    def resume_due(self) -> bool:
        """End the pauses that are over (an ``AccountResumed`` each); True if any ended."""
        over = self.pauses.expired(self._clock.api_time())
        for pause in over:
            self._emit(AccountResumed(self._clock.now(), pause.account, pause.model))
        return bool(over)

    def free_at(self, account: str, model: str | None) -> float:
        """API time from which ``account`` takes requests for ``model`` (the past: now)."""
        return self.pauses.free_at(account, model)

    def available(self, account: str, model: str | None) -> bool:
        """Usable and not paused, as a whole or for ``model``."""
        if account in self.dropped:
            return False
        return not self.pauses or self.free_at(account, model) <= self._clock.api_time() + SLACK

    def note_inflight(self, account: str) -> None:
        self._emit(InflightChanged(self._clock.now(), account, self._limiters[account].in_flight))

    def note_rejection(self, account: str, status: int | None) -> None:
        self._emit(Rejected(self._clock.now(), account, status))


async def find_accounts(
    client: FlowClient,
    *,
    chosen: Sequence[str],
    policy: RetryPolicy,
    clock: RunClock,
    rng: random.Random,
    stopped: Callable[[], bool] = lambda: False,
) -> list[str]:
    """``chosen`` if any, else every healthy account ``GET /accounts`` lists (no retry
    once ``stopped()``)."""
    if chosen:
        return list(chosen)
    accounts = await retrying(client.accounts, policy=policy, clock=clock, rng=rng,
                              stopped=stopped)
    healthy = [email for email, info in accounts.items() if info.ok]
    for email, info in accounts.items():
        if not info.ok:
            log.warning("skipping account %s: %s", email, info.health)
    if not healthy:
        details = "; ".join(f"{e}: {i.health}" for e, i in accounts.items()) or "none configured"
        raise SessionError(
            f"no healthy account at the API ({details})",
            hint="refresh the account's cookies (useapi.net: Setup Google Flow), "
            "or name a working account",
            option="accounts",
        )
    return healthy
