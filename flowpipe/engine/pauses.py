"""Quota pauses (2026-07): which account, or which model on an account, is out until when.

A 429 with a reason is the service taking something out for a while: an account for
about 30 minutes, one model on an account until midnight UTC, or every account for
``Retry-After``. That is not a capacity signal: the limiter never hears of it and no
window shrinks. The account pool keeps one ``Pauses``; every time in it is API time
(``RunClock.api_time``), so a simulator's time scale shrinks a pause like any delay.
A pause only ever grows: a shorter one for what is already out changes nothing.
The upscale endpoint names no model: a per-model quota answer to an upscale pauses the
account's upscales (``UPSCALES`` in the model's place), not the model its source was
made with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from flowpipe.api.errors import duration_text

__all__ = ["SLACK", "UPSCALES", "Pause", "Pauses", "describe_pauses"]

SLACK = 1e-3  # API seconds: a timer that wakes a hair early still sees its pause over
UPSCALES = "upscale"  # what an upscale asks for, where a generation names its model


@dataclass(frozen=True, slots=True)
class Pause:
    """``account`` (or ``model`` on it; None: the whole account) is out until ``until``."""

    account: str
    model: str | None
    reason: str
    until: float  # API time


class Pauses:
    """The pauses in force, by (account, model); ``model`` None stands for every model."""

    def __init__(self) -> None:
        self._pauses: dict[tuple[str, str | None], Pause] = {}

    def __bool__(self) -> bool:
        return bool(self._pauses)

    def add(self, account: str, model: str | None, reason: str, until: float) -> Pause | None:
        """Record a pause; None when one at least as long is already in force."""
        old = self._pauses.get((account, model))
        if old is not None and old.until >= until:
            return None
        pause = Pause(account, model, reason, until)
        self._pauses[(account, model)] = pause
        return pause

    def free_at(self, account: str, model: str | None) -> float:
        """When ``account`` may take a request for ``model`` again (0.0: it may now).

        ``model`` None asks about the account alone.
        """
        keys = [(account, None)] if model is None else [(account, None), (account, model)]
        return max((self._pauses[k].until for k in keys if k in self._pauses), default=0.0)

    def expired(self, now: float) -> list[Pause]:
        """Forget and return the pauses that are over at ``now``."""
        over = [p for p in self._pauses.values() if p.until <= now + SLACK]
        for pause in over:
            del self._pauses[(pause.account, pause.model)]
        return over

    def active(self, accounts: Iterable[str] | None = None) -> list[Pause]:
        """The pauses in force (of ``accounts`` only, when given), soonest end first."""
        wanted = None if accounts is None else set(accounts)
        found = [p for p in self._pauses.values() if wanted is None or p.account in wanted]
        return sorted(found, key=lambda p: (p.until, p.account, p.model or ""))


def describe_pauses(pauses: Iterable[Pause], *, now: float, scale: float,
                    wall: dt.datetime) -> str:
    """``a@x back at 2026-07-15 14:03:10 UTC (in 30 min, REASON); ...`` for people.

    ``now`` is the API time the pauses are measured from, ``wall`` the real UTC time at
    that moment and ``scale`` real seconds per API second (a simulator's is below 1).
    """
    parts = []
    for pause in pauses:
        left = max(0.0, pause.until - now)
        back = (wall + dt.timedelta(seconds=left * scale)).astimezone(dt.UTC)
        what = f"{pause.account} ({pause.model})" if pause.model else pause.account
        clock = "" if scale == 1 else " of API time"
        parts.append(f"{what} back at {back:%Y-%m-%d %H:%M:%S} UTC "
                     f"(in {duration_text(left)}{clock}, {pause.reason})")
    return "; ".join(parts)
