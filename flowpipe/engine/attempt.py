"""One node's attempts: what it asks for next and what each answer means for it.

The per-node state machine of DESIGN section 1's table. Every error a request meets
is classified once (``classify``); from that follow the limiter's outcome, the
counters, the retry decision, the switch to the fallback model after moderation and
the single re-upload after a 403. The coordinator only carries the decision out.
"""

from __future__ import annotations

import random

from flowpipe.engine.classify import classify
from flowpipe.engine.limiter import Outcome
from flowpipe.engine.retry import Action, Attempts, Decision, RetryPolicy, decide
from flowpipe.errors import APIError
from flowpipe.planner import Node

__all__ = ["NodeAttempt"]


class NodeAttempt:
    """Where one node stands: the model it asks for and what it has been through."""

    __slots__ = ("_policy", "_rng", "counts", "model", "node")

    def __init__(self, node: Node, policy: RetryPolicy, rng: random.Random) -> None:
        self.node = node
        self.model = node.model
        self.counts = Attempts()
        self._policy = policy
        self._rng = rng

    @property
    def sent(self) -> int:
        """Requests sent for this node so far."""
        return self.counts.sent

    def sending(self) -> int:
        """Count one more request; returns its number (1 for the first)."""
        self.counts.sent += 1
        return self.counts.sent

    def backoff(self) -> float:
        """A capacity retry's delay (API seconds), for a node that must not go again at once."""
        return self._rng.uniform(*self._policy.capacity_delay)

    @staticmethod
    def outcome(error: APIError) -> Outcome:
        """What ``error`` tells the limiter about capacity."""
        return classify(error).outcome

    def after(self, error: APIError) -> Decision:
        """Count ``error``, decide what comes next and move to it (model, re-upload)."""
        self.counts.count(classify(error))
        fallback = self.node.fallback_model if self.node.fallback_model != self.model else None
        decision = decide(
            error,
            self.counts,
            policy=self._policy,
            moderation_retries=self.node.moderation_retries,
            can_switch=fallback is not None,
            rng=self._rng,
        )
        if decision.action is Action.SWITCH_MODEL:
            assert fallback is not None  # decide switches only when it may
            self.model = fallback
            self.counts.switched = True
            self.counts.moderation = 0
        elif decision.action is Action.REUPLOAD:
            self.counts.reuploaded = True
        return decision
