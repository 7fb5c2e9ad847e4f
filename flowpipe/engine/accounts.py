"""The accounts a run may use, each with its own limiter, and their fate.

An account is dropped on 404 (not configured) or 596 (session refresh failed); the
run goes on with the others. Limiter events become run events here, so the report
and the progress display see window changes per account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from flowpipe.engine.events import (
    ErrorInfo,
    Event,
    EventSink,
    InflightChanged,
    Rejected,
    WindowChanged,
    broadcast,
)
from flowpipe.engine.limiter import (
    AdaptiveLimiter,
    FixedLimiter,
    Limiter,
    LimiterConfig,
    LimiterEvent,
)

__all__ = ["AccountPool"]

log = logging.getLogger("flowpipe.engine")


class AccountPool:
    """Accounts in use, one limiter each; ``fixed_window`` replaces adaptation."""

    def __init__(
        self,
        accounts: Sequence[str],
        *,
        sinks: Sequence[EventSink] = (),
        limiter_config: LimiterConfig | None = None,
        fixed_window: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        t0: float | None = None,
        send_email: bool = True,
    ) -> None:
        if not accounts:
            raise ValueError("an account pool needs at least one account")
        self.accounts = list(dict.fromkeys(accounts))
        self.sinks = list(sinks)
        self.send_email = send_email
        self.dropped: dict[str, ErrorInfo] = {}
        self._clock = clock
        self._t0 = clock() if t0 is None else t0
        self._limiters: dict[str, Limiter] = {}
        for account in self.accounts:
            on_event = self._forward(account)
            limiter: Limiter
            if fixed_window is not None:
                limiter = FixedLimiter(fixed_window, clock=clock, on_event=on_event)
            else:
                limiter = AdaptiveLimiter(limiter_config, clock=clock, on_event=on_event)
            self._limiters[account] = limiter

    def _emit(self, event: Event) -> None:
        broadcast(self.sinks, event)

    def _forward(self, account: str) -> Callable[[LimiterEvent], None]:
        def on_event(ev: LimiterEvent) -> None:
            if ev.kind != "rejection":
                self._emit(WindowChanged(ev.at - self._t0, account, ev.window, ev.reason))

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

    def note_inflight(self, account: str, t: float) -> None:
        self._emit(InflightChanged(t, account, self._limiters[account].in_flight))

    def note_rejection(self, account: str, status: int | None, t: float) -> None:
        self._emit(Rejected(t, account, status))
