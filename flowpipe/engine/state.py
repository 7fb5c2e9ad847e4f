"""What the engine knows about each node while a run goes, and how it ends up.

``NodeState`` is the engine's own, mutable record; the manifest, run.json and the
caller's ``NodeResult`` are all built from it when the run ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowpipe.api import ImageResult, UpscaledImage
from flowpipe.engine.attempt import NodeAttempt
from flowpipe.errors import ErrorInfo
from flowpipe.planner import Ref
from flowpipe.store.responses import CachedGeneration, CachedImage, sha256_hex
from flowpipe.why import Verdict

__all__ = ["NodeState", "Status", "describe", "image_bytes", "summarize"]

Status = Literal["pending", "ready", "running", "done", "failed", "skipped", "waiting"]


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
    seconds: float = 0.0
    verdict: Verdict | None = None  # cached, new or changed, and why (flowpipe.why)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "skipped", "waiting")


def describe(
    result: ImageResult | UpscaledImage, *, account: str, model: str, attempts: int,
    api_seconds: float, request: Mapping[str, Any] | None = None,
) -> CachedGeneration:
    """What the cache keeps about a response: image hashes, ids, formats, sizes, timings.

    The client read each image's format and size (a garbled image was a bad answer
    there, never an error here). An upscale's answer is one image with no seed and (on
    today's page) no id.
    """
    made = (
        [(img.data, img.seed, img.media_generation_id, img.format, img.width, img.height)
         for img in result.images]
        if isinstance(result, ImageResult)
        else [(result.data, None, result.media_generation_id or "", result.format,
               result.width, result.height)]
    )
    images = tuple(
        CachedImage(sha256=sha256_hex(data), seed=seed, media_generation_id=media_id,
                    width=width, height=height, format=kind)
        for data, seed, media_id, kind, width, height in made
    )
    return CachedGeneration(
        images=images,
        account=account,
        model_used=model,
        attempts=attempts,
        generation_seconds=round(api_seconds, 3),
        request=request,
    )


def image_bytes(result: ImageResult | UpscaledImage) -> list[bytes]:
    """The bytes of every image an answer carried, in index order."""
    if isinstance(result, ImageResult):
        return [img.data for img in result.images]
    return [result.data]


def summarize(states: Mapping[str, NodeState], *, images: int) -> dict[str, int]:
    """Counts by outcome, as the JSON summary and run.json show them (``images``: how
    many the nodes made, which the ledger counts as they end)."""
    counts = {"nodes": len(states), "done": 0, "cached": 0, "failed": 0, "skipped": 0,
              "waiting": 0}
    for state in states.values():
        if state.status in counts:
            counts[state.status] += 1
        if state.cache_hit:
            counts["cached"] += 1
    counts["images"] = images
    return counts
