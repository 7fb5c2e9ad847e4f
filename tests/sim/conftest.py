"""Fixtures for the simulator tests: an app on loopback with a tiny time scale."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from flowpipe.sim import SimConfig, create_app

from .helpers import FAST, MakeSim


@pytest.fixture
def make_sim(aiohttp_client: Any) -> MakeSim:
    """``await make_sim(**SimConfig fields)`` -> a test client of a fresh simulator."""

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        config = SimConfig(**{**FAST, **overrides})
        client: TestClient[Any, Any] = await aiohttp_client(create_app(config))
        return client

    return make
