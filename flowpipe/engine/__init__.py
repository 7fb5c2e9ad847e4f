"""The run engine: a plan's nodes through the cache, the limiters and the API.

``run_recipe`` / ``run_recipe_async`` are what ``flowpipe.run`` / ``flowpipe.run_async``
call; the modules inside are documented in docs/architecture.md.
"""

from __future__ import annotations

from flowpipe.engine.clock import Clock, FakeClock, RunClock, SystemClock, VirtualClock
from flowpipe.engine.limiter import AdaptiveLimiter, FixedLimiter, LimiterConfig, Outcome
from flowpipe.engine.retry import RetryPolicy
from flowpipe.engine.runner import RunControl, RunOptions, run_recipe, run_recipe_async

__all__ = [
    "AdaptiveLimiter",
    "Clock",
    "FakeClock",
    "FixedLimiter",
    "LimiterConfig",
    "Outcome",
    "RetryPolicy",
    "RunClock",
    "RunControl",
    "RunOptions",
    "SystemClock",
    "VirtualClock",
    "run_recipe",
    "run_recipe_async",
]
