"""What the engine knows about each node while a run goes, and how it ends up.

``NodeState`` is the engine's own, mutable record; the manifest, run.json and the
caller's ``NodeResult`` are all built from it when the run ends.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from flowpipe.api import ImageResult
from flowpipe.engine.attempt import NodeAttempt
from flowpipe.errors import ErrorInfo
from flowpipe.planner import Ref
from flowpipe.store.responses import CachedGeneration, CachedImage, sha256_hex
from flowpipe.why import Verdict

__all__ = ["NodeState", "Status", "describe", "summarize"]

Status = Literal["pending", "ready", "running", "done", "failed", "skipped"]


@dataclass(slots=True)
class NodeState:
    """One node: its place in the run, its real key once known, and its result."""

    attempt: NodeAttempt
    status: Status = "pending"
    key: str | None = None
    ref_hashes: dict[Ref, str] = field(default_factory=dict)
    generation: CachedGeneration | None = None
    cache_hit: bool = False
    error: ErrorInfo | None = None
    account: str | None = None
    seconds: float = 0.0
    verdict: Verdict | None = None  # cached, new or changed, and why (flowpipe.why)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "skipped")


def describe(
    result: ImageResult, *, account: str, model: str, attempts: int, api_seconds: float
) -> CachedGeneration:
    """What the cache keeps about a response: image hashes, ids, sizes and timings."""
    images = []
    for img in result.images:
        with Image.open(io.BytesIO(img.data)) as im:  # reads the header only
            width, height = im.size
        images.append(
            CachedImage(
                sha256=sha256_hex(img.data),
                seed=img.seed,
                media_generation_id=img.media_generation_id,
                width=width,
                height=height,
            )
        )
    return CachedGeneration(
        images=tuple(images),
        account=account,
        model_used=model,
        attempts=attempts,
        generation_seconds=round(api_seconds, 3),
    )


def summarize(states: Mapping[str, NodeState]) -> dict[str, int]:
    """Counts by outcome, as the JSON summary and run.json show them."""
    counts = {"nodes": len(states), "done": 0, "cached": 0, "failed": 0, "skipped": 0}
    images = 0
    for state in states.values():
        if state.status in counts:
            counts[state.status] += 1
        if state.cache_hit:
            counts["cached"] += 1
        if state.generation is not None:
            images += len(state.generation.images)
    counts["images"] = images
    return counts
