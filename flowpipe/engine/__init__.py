"""Running a plan: scheduler, adaptive limiter, retry policy, account pool."""

from __future__ import annotations

from flowpipe.engine.limiter import AdaptiveLimiter, FixedLimiter, LimiterConfig, Outcome
from flowpipe.engine.retry import RetryPolicy
from flowpipe.engine.runner import RunControl, RunOptions, RunResult, run_recipe, run_recipe_async

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
