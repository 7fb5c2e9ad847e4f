"""C(t) for each capacity kind, and the fluid oracle bound on it."""

from __future__ import annotations

import itertools

import pytest

from flowpipe.sim import CapacitySpec, CapacityTrace, oracle_makespan
from flowpipe.sim.capacity import MAX_LEVEL, MIN_LEVEL


def test_constant_is_flat() -> None:
    trace = CapacityTrace(CapacitySpec(kind="constant", level=7), seed=1)
    assert {trace.level_at(t) for t in (0.0, 5.0, 1e6)} == {7}
    assert trace.changes_until(1000.0) == [(0.0, 7)]


def test_square_alternates_20_and_3() -> None:
    trace = CapacityTrace(CapacitySpec(kind="square", period=30.0), seed=0)
    assert [trace.level_at(t) for t in (0, 29.9, 30, 59.9, 60)] == [20, 20, 3, 3, 20]
    assert trace.changes_until(95.0) == [(0.0, 20), (30.0, 3), (60.0, 20), (90.0, 3)]


@pytest.mark.parametrize("kind", ["steps", "walk"])
def test_random_kinds_stay_in_range_and_follow_the_seed(kind: str) -> None:
    spec = CapacitySpec(kind=kind, period=10.0)  # type: ignore[arg-type]
    levels = [CapacityTrace(spec, seed=4).level_at(10.0 * k) for k in range(200)]
    again = [CapacityTrace(spec, seed=4).level_at(10.0 * k) for k in range(200)]
    other = [CapacityTrace(spec, seed=5).level_at(10.0 * k) for k in range(200)]
    assert levels == again
    assert levels != other
    assert all(MIN_LEVEL <= level <= MAX_LEVEL for level in levels)
    assert len(set(levels)) > 5


def test_walk_moves_by_one_or_two() -> None:
    trace = CapacityTrace(CapacitySpec(kind="walk", period=10.0), seed=2)
    levels = [trace.level_at(10.0 * k) for k in range(300)]
    steps = {abs(b - a) for a, b in itertools.pairwise(levels)}
    assert steps <= {0, 1, 2}  # 0 only where the walk hits a bound
    assert {1, 2} <= steps


def test_changes_until_lists_only_changes() -> None:
    trace = CapacityTrace(CapacitySpec(kind="steps", period=5.0), seed=9)
    points = trace.changes_until(500.0)
    assert points[0][0] == 0.0
    assert all(a[1] != b[1] for a, b in itertools.pairwise(points))
    assert all(trace.level_at(t) == c for t, c in points)


def test_finish_time_integrates_across_segments() -> None:
    trace = CapacityTrace(CapacitySpec(kind="square", period=10.0), seed=0)
    # From t=5: 5 s at 20 (100), then 10 s at 3 (30), then 20 per second.
    assert trace.finish_time(5.0, 100.0) == pytest.approx(10.0)
    assert trace.finish_time(5.0, 130.0) == pytest.approx(20.0)
    assert trace.finish_time(5.0, 170.0) == pytest.approx(22.0)


@pytest.mark.parametrize(
    ("work", "longest", "expected"),
    [(100.0, 10.0, 20.0), (10.0, 15.0, 15.0)],
    ids=["fluid", "longest"],
)
def test_oracle_is_the_larger_of_fluid_and_longest(
    work: float, longest: float, expected: float
) -> None:
    trace = CapacityTrace(CapacitySpec(kind="constant", level=5), seed=0)
    assert oracle_makespan(trace, start=3.0, work=work, longest=longest) == pytest.approx(expected)
