"""Parsing --capacity and checking SimConfig values."""

from __future__ import annotations

from typing import Any

import pytest

from flowpipe.errors import UsageError
from flowpipe.sim import CapacitySpec, SimConfig, parse_capacity


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("5", CapacitySpec(kind="constant", level=5)),
        ("walk", CapacitySpec(kind="walk", period=10.0)),
        ("walk:4", CapacitySpec(kind="walk", period=4.0)),
        ("steps:30", CapacitySpec(kind="steps", period=30.0)),
        ("square:120", CapacitySpec(kind="square", period=120.0)),
    ],
    ids=["constant", "walk", "walk-period", "steps", "square"],
)
def test_parse_capacity(text: str, spec: CapacitySpec) -> None:
    assert parse_capacity(text) == spec
    assert parse_capacity(str(spec)) == spec


@pytest.mark.parametrize("text", ["0", "steps", "steps:x", "square:0", "wave:3", ""])
def test_bad_capacity_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--capacity"):
        parse_capacity(text)


@pytest.mark.parametrize(
    "fields",
    [
        {"tokens": ()},
        {"accounts": ("not-an-email",)},
        {"accounts": ()},
        {"time_scale": 0.0},
        {"moderation_rate": 1.5},
        {"fault_rate": -0.1},
        {"credits": -1},
        {"latency_min": 5.0, "latency_max": 1.0},
        {"reject_status": "418"},
    ],
    ids=[
        "no-token",
        "bad-email",
        "no-account",
        "time-scale",
        "moderation",
        "fault",
        "credits",
        "latency",
        "reject",
    ],
)
def test_bad_config_is_a_usage_error(fields: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        SimConfig(**fields)


def test_broken_accounts_join_the_accounts_and_tokens_stay_out_of_repr() -> None:
    config = SimConfig(tokens=("s3cret",), accounts=("a@x.io",), broken_accounts=("b@x.io",))
    assert config.all_accounts == ("a@x.io", "b@x.io")
    assert "s3cret" not in repr(config)
