"""Running a plan: scheduler, adaptive limiter, retry policy, account pool."""

from __future__ import annotations

from flowpipe.run.limiter import AdaptiveLimiter, FixedLimiter, LimiterConfig, Outcome
from flowpipe.run.retry import RetryPolicy
from flowpipe.run.runner import RunControl, RunOptions, RunResult, run_recipe, run_recipe_async

__all__ = [
    "AdaptiveLimiter",
    "FixedLimiter",
    "LimiterConfig",
    "Outcome",
    "RetryPolicy",
    "RunControl",
    "RunOptions",
    "RunResult",
    "run_recipe",
    "run_recipe_async",
]
