"""What a simulator run looks like: every ``flowpipe sim`` flag as one frozen value.

The CLI, the runner's embedded default backend and the benchmarks all build a
``SimConfig``; the server reads nothing else, so a run is reproducible from it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from flowpipe.dialects import DEFAULT_DIALECT, DIALECTS, dialect
from flowpipe.errors import UsageError

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_FIFE_TTL",
    "DEFAULT_TOKEN",
    "CapacitySpec",
    "RejectStatus",
    "SimConfig",
    "parse_capacity",
    "parse_clock_start",
    "parse_model_quota",
    "parse_throttle",
]

DEFAULT_TOKEN = "sim-token"  # noqa: S105 - the simulator's public, documented test token
DEFAULT_ACCOUNT = "sim@example.com"
DEFAULT_FIFE_TTL = 6 * 3600.0  # API seconds a signed image URL stays readable

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


def parse_throttle(text: str) -> tuple[str, float]:
    """Read ``--throttle EMAIL:T``: that account is throttled from API second T on."""
    email, _, when = text.strip().rpartition(":")
    try:
        start = float(when)
    except ValueError:
        start = -1.0
    if not email or not start >= 0:
        raise UsageError(f"--throttle {text}: use EMAIL:SECONDS, e.g. a@example.com:60")
    return email, start


def parse_model_quota(text: str) -> tuple[str, int]:
    """Read ``--model-quota MODEL:N``: N generations of MODEL per account per UTC day."""
    model, _, count = text.strip().rpartition(":")
    if not model or not count.isdigit():
        raise UsageError(f"--model-quota {text}: use MODEL:N, e.g. nano-banana-pro:3")
    return model, int(count)


def parse_clock_start(text: str) -> float:
    """Read ``--clock-start``: the UTC wall time at API second 0, ISO 8601."""
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--clock-start {text}: use an ISO time such as 2026-07-15T23:50:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """Every knob of the simulator; defaults are those of ``flowpipe sim``.

    Times (``latency_min``, ``latency_max``, capacity periods, ``fife_ttl``,
    ``throttles``) are API seconds; the server waits ``time_scale`` real seconds for
    each of them. Rates are fractions of /images requests. ``credits`` is the number
    of successful generations before 402 (None = unlimited). ``tokens`` never appears
    in a repr.

    ``dialect`` is the API version served (``flowpipe.dialects``); the fields after
    it only act in a dialect that has what they simulate (2026-07): signed image URLs
    that expire after ``fife_ttl`` (``fife_expired_rate`` of them issued already
    expired, a fresh draw each time a request is made again), ``encodedImage`` on
    ``encoded_image_rate`` of the images, PNG bytes for ``png_rate`` of them,
    throttled accounts (``throttles``: ``(email, from API second)``), per-model daily
    quotas (``model_quotas``:
    ``(model, generations per account per UTC day)``), an account quota
    (``account_quota``: generations before USER_QUOTA_REACHED) and refused captchas.
    ``clock_start`` is the UTC wall time (epoch seconds) at API second 0; None: the
    real time when the server starts. ``media_folder`` keeps every mediaGenerationId
    across restarts (None: they live as long as the server).
    """

    tokens: tuple[str, ...] = field(default=(DEFAULT_TOKEN,), repr=False)
    accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,)
    time_scale: float = 1.0
    capacity: CapacitySpec = CapacitySpec(kind="walk")
    capacity_per_account: bool = False  # each account its own C(t), else one shared C(t)
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
    dialect: str = DEFAULT_DIALECT
    fife_ttl: float = DEFAULT_FIFE_TTL
    fife_expired_rate: float = 0.0
    encoded_image_rate: float = 0.25
    png_rate: float = 0.25
    throttles: tuple[tuple[str, float], ...] = ()
    model_quotas: tuple[tuple[str, int], ...] = ()
    account_quota: int | None = None
    captcha_fail_rate: float = 0.0
    clock_start: float | None = None
    media_folder: Path | None = None

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
        self._check_dialect_knobs()

    def _check_dialect_knobs(self) -> None:
        if self.dialect not in DIALECTS:
            raise UsageError(
                f"--dialect must be one of {', '.join(DIALECTS)}, not {self.dialect}"
            )
        spoken = dialect(self.dialect)
        if not self.fife_ttl > 0:
            raise UsageError(f"--fife-ttl must be more than 0, not {self.fife_ttl}")
        _rate("--fife-expired-rate", self.fife_expired_rate)
        _rate("--encoded-image-rate", self.encoded_image_rate)
        _rate("--png-rate", self.png_rate)
        _rate("--captcha-fail-rate", self.captcha_fail_rate)
        known = {a.lower() for a in self.all_accounts}
        for email, start in self.throttles:
            if email.lower() not in known:
                raise UsageError(f"--throttle {email}: not one of the simulator's accounts")
            if not start >= 0:
                raise UsageError(f"--throttle {email}: the time must be 0 or more")
        for model, count in self.model_quotas:
            if spoken.canonical_model(model) is None:
                raise UsageError(
                    f"--model-quota {model}: api {spoken.name} has no such model "
                    f"({', '.join(spoken.model_names)})"
                )
            if count < 0:
                raise UsageError(f"--model-quota {model}: N must be 0 or more")
        if self.account_quota is not None and self.account_quota < 0:
            raise UsageError(f"--account-quota must be 0 or more, not {self.account_quota}")
        uses_2026 = bool(self.throttles or self.model_quotas or self.account_quota is not None
                         or self.captcha_fail_rate or self.fife_expired_rate)
        if uses_2026 and not spoken.rate_reasons:
            raise UsageError(
                "--throttle, --model-quota, --account-quota, --captcha-fail-rate and "
                f"--fife-expired-rate need --dialect 2026-07 (api {spoken.name} has no "
                "quota reasons, captcha or signed image URLs)"
            )

    @property
    def all_accounts(self) -> tuple[str, ...]:
        """Configured accounts, then broken ones not already listed (order kept)."""
        seen = dict.fromkeys(self.accounts)
        seen.update(dict.fromkeys(self.broken_accounts))
        return tuple(seen)
