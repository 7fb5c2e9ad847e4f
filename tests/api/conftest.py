"""Fixtures for the API client tests: a client on a MockTransport (no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flowpipe.api import FlowClient, HTTPRequest, MockTransport

from .builders import BASE, TOKEN, MakeClient


@pytest.fixture
def make_client() -> MakeClient:
    """``make_client(handler)`` -> (client on a MockTransport, the transport)."""

    def build(
        handler: Callable[[HTTPRequest], Any], **kwargs: Any
    ) -> tuple[FlowClient, MockTransport]:
        transport = MockTransport(handler)
        return FlowClient(base_url=BASE, token=TOKEN, transport=transport, **kwargs), transport

    return build
