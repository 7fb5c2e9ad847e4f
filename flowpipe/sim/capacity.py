"""The hidden capacity C(t) and the oracle makespan bound computed on it.

C(t) is piecewise constant in API time, a pure function of the spec and the seed, so
the trace a run saw and the bound derived from it can be recomputed afterwards.
"""

from __future__ import annotations

import hashlib
import math

from flowpipe.sim.config import CapacitySpec

__all__ = ["MAX_LEVEL", "MIN_LEVEL", "CapacityTrace", "oracle_makespan"]

MIN_LEVEL = 3
MAX_LEVEL = 20


def _draw(seed: int, *parts: object) -> int:
    """A stable 64-bit number from the seed and some labels (same on every machine)."""
    text = ":".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


class CapacityTrace:
    """C(t) for one spec and seed; segment k covers [k·period, (k+1)·period)."""

    def __init__(self, spec: CapacitySpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self._walk: list[int] = []

    def _segment_level(self, k: int) -> int:
        spec = self.spec
        if spec.kind == "constant":
            return spec.level
        if spec.kind == "square":
            return MAX_LEVEL if k % 2 == 0 else MIN_LEVEL
        span = MAX_LEVEL - MIN_LEVEL + 1
        if spec.kind == "steps":
            return MIN_LEVEL + _draw(self.seed, "steps", k) % span
        while len(self._walk) <= k:
            i = len(self._walk)
            if i == 0:
                self._walk.append(MIN_LEVEL + _draw(self.seed, "walk", 0) % span)
                continue
            step = (-2, -1, 1, 2)[_draw(self.seed, "walk", i) % 4]
            self._walk.append(min(MAX_LEVEL, max(MIN_LEVEL, self._walk[-1] + step)))
        return self._walk[k]

    def _segment(self, t: float) -> int:
        if self.spec.kind == "constant":
            return 0
        return max(0, math.floor(t / self.spec.period))

    def level_at(self, t: float) -> int:
        """C(t): how many generations may run at once at API time ``t``."""
        return self._segment_level(self._segment(t))

    def changes_until(self, t: float) -> list[tuple[float, int]]:
        """``[(t_i, C_i)]`` from time 0 to ``t``: each point where C changes value."""
        points: list[tuple[float, int]] = [(0.0, self._segment_level(0))]
        for k in range(1, self._segment(t) + 1):
            level = self._segment_level(k)
            if level != points[-1][1]:
                points.append((k * self.spec.period, level))
        return points

    def finish_time(self, start: float, work: float) -> float:
        """Smallest ``T >= start`` with the integral of C over [start, T] >= ``work``."""
        t, remaining = start, work
        if remaining <= 0:
            return start
        if self.spec.kind == "constant":
            return start + remaining / self.spec.level
        while True:
            k = self._segment(t)
            end = (k + 1) * self.spec.period
            level = self._segment_level(k)
            if level * (end - t) >= remaining:
                return t + remaining / level
            remaining -= level * (end - t)
            t = end


def oracle_makespan(trace: CapacityTrace, *, start: float, work: float, longest: float) -> float:
    """The fluid lower bound on makespan, in API seconds, for work arriving at ``start``.

    No scheduler can finish sooner: the capacity-seconds between ``start`` and
    ``start + T`` must cover the summed service time ``work``, and no job finishes
    faster than its own service time, so ``T >= longest``.
    """
    return max(trace.finish_time(start, work) - start, longest)
