"""What a simulator run looks like: every ``flowpipe sim`` flag as one frozen value.

The CLI, the runner's embedded default backend and the benchmarks all build a
``SimConfig``; the server reads nothing else, so a run is reproducible from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from flowpipe.errors import UsageError

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_TOKEN",
    "CapacitySpec",
    "RejectStatus",
    "SimConfig",
    "parse_capacity",
]

DEFAULT_TOKEN = "sim-token"  # noqa: S105 - the simulator's public, documented test token
DEFAULT_ACCOUNT = "sim@example.com"

RejectStatus = Literal["429", "503", "mixed"]
CapacityKind = Literal["constant", "steps", "walk", "square"]

_EMAIL = re.compile(r"^[^@\s/]+@[^@\s/]+$")


@dataclass(frozen=True, slots=True)
class CapacitySpec:
    """How the hidden capacity C(t) moves, in API seconds.

    ``constant``: ``level`` forever. ``steps``: a new seeded level in [3, 20] every
    ``period`` s. ``walk``: a seeded random walk of ±1..2 every ``period`` s, clamped to
    [3, 20]. ``square``: 20 and 3 alternating every ``period`` s, starting at 20.
    """

    kind: CapacityKind
    level: int = 20
    period: float = 10.0

    def __str__(self) -> str:
        if self.kind == "constant":
            return str(self.level)
        if self.kind == "walk" and self.period == 10.0:
            return "walk"
        return f"{self.kind}:{self.period:g}"


def parse_capacity(text: str) -> CapacitySpec:
    """Read ``--capacity``: ``N``, ``walk``, ``walk:S``, ``steps:S`` or ``square:S``."""
    value = text.strip().lower()
    if value.isdigit():
        level = int(value)
        if not 1 <= level <= 1000:
            raise UsageError(f"--capacity {text}: a constant capacity must be 1-1000")
        return CapacitySpec(kind="constant", level=level)
    kind, _, period_text = value.partition(":")
    if kind not in ("steps", "walk", "square"):
        raise UsageError(
            f"--capacity {text}: use an integer, 'walk', 'walk:SECONDS', "
            "'steps:SECONDS' or 'square:SECONDS'"
        )
    if not period_text:
        if kind != "walk":
            raise UsageError(f"--capacity {text}: '{kind}' needs a period, e.g. '{kind}:30'")
        period_text = "10"
    try:
        period = float(period_text)
    except ValueError:
        raise UsageError(f"--capacity {text}: '{period_text}' is not a number of seconds") from None
    if not period > 0:
        raise UsageError(f"--capacity {text}: the period must be more than 0 seconds")
    return CapacitySpec(kind=kind, period=period)  # type: ignore[arg-type]


def _rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{name} must be between 0 and 1, not {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """Every knob of the simulator; defaults are those of ``flowpipe sim``.

    Times (``latency_min``, ``latency_max``, capacity periods) are API seconds; the
    server waits ``time_scale`` real seconds for each of them. Rates are fractions of
    /images requests. ``credits`` is the number of successful generations before 402
    (None = unlimited). ``tokens`` never appears in a repr.
    """

    tokens: tuple[str, ...] = field(default=(DEFAULT_TOKEN,), repr=False)
    accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,)
    time_scale: float = 1.0
    capacity: CapacitySpec = CapacitySpec(kind="walk")
    capacity_per_account: bool = False  # each account its own C(t), as the real API grants
    reject_status: RejectStatus = "mixed"
    moderation_rate: float = 0.0
    moderation_word: str = "forbidden"
    nano_500_rate: float = 0.0
    fault_rate: float = 0.0
    credits: int | None = None
    broken_accounts: tuple[str, ...] = ()
    latency_min: float = 10.0
    latency_max: float = 20.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.tokens or any(not t for t in self.tokens):
            raise UsageError("the simulator needs at least one non-empty token")
        for email in (*self.accounts, *self.broken_accounts):
            if not _EMAIL.match(email):
                raise UsageError(f"'{email}' is not an email address")
        if not self.all_accounts:
            raise UsageError("the simulator needs at least one account")
        if not self.time_scale > 0:
            raise UsageError(f"--time-scale must be more than 0, not {self.time_scale}")
        if self.reject_status not in ("429", "503", "mixed"):
            raise UsageError(f"--reject-status must be 429, 503 or mixed, not {self.reject_status}")
        _rate("--moderation-rate", self.moderation_rate)
        _rate("--nano-500-rate", self.nano_500_rate)
        _rate("--fault-rate", self.fault_rate)
        if self.credits is not None and self.credits < 0:
            raise UsageError(f"--credits must be 0 or more, not {self.credits}")
        if not 0 <= self.latency_min <= self.latency_max:
            raise UsageError("latency must satisfy 0 <= --latency-min <= --latency-max")
        if not self.moderation_word.strip():
            raise UsageError("--moderation-word must not be empty")

    @property
    def all_accounts(self) -> tuple[str, ...]:
        """Configured accounts, then broken ones not already listed (order kept)."""
        seen = dict.fromkeys(self.accounts)
        seen.update(dict.fromkeys(self.broken_accounts))
        return tuple(seen)
