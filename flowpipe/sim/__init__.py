"""A local stand-in for the Google Flow image API (useapi.net), for tests and benchmarks.

Same paths, bodies, status codes and error texts as the API page (either dialect of
``flowpipe.dialects``); a hidden capacity C(t); deterministic images; in 2026-07 signed
image URLs, upscales, quotas and captcha refusals on demand. See ``docs/simulator.md``.
"""

from __future__ import annotations

from flowpipe.sim.app import BASE_PATH, create_app
from flowpipe.sim.capacity import CapacityTrace, oracle_makespan
from flowpipe.sim.config import (
    DEFAULT_ACCOUNT,
    DEFAULT_FIFE_TTL,
    DEFAULT_TOKEN,
    CapacitySpec,
    SimConfig,
    parse_capacity,
    parse_clock_start,
    parse_model_quota,
    parse_throttle,
)
from flowpipe.sim.render import NATIVE_SIZES
from flowpipe.sim.server import RunningSim, SimThread, run_server, running_sim, serve

__all__ = [
    "BASE_PATH",
    "DEFAULT_ACCOUNT",
    "DEFAULT_FIFE_TTL",
    "DEFAULT_TOKEN",
    "NATIVE_SIZES",
    "CapacitySpec",
    "CapacityTrace",
    "RunningSim",
    "SimConfig",
    "SimThread",
    "create_app",
    "oracle_makespan",
    "parse_capacity",
    "parse_clock_start",
    "parse_model_quota",
    "parse_throttle",
    "run_server",
    "running_sim",
    "serve",
]
