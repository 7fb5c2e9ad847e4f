"""Typed values for what goes to the Flow API and what comes back.

Requests are plain values with a ``to_json`` that uses the API page's names; results
are built only by ``flowpipe.api.responses`` after every field has been checked, so a
caller can trust their types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowpipe.errors import InvalidRequestError

__all__ = [
    "MAX_CONTEXT_REFERENCES",
    "AccountInfo",
    "GeneratedImage",
    "ImageRequest",
    "ImageResult",
    "UploadedAsset",
    "short_text",
]

MAX_CONTEXT_REFERENCES = 4  # the page has contextReference_1 .. contextReference_4


def short_text(text: str, limit: int = 24) -> str:
    """Cut ``text`` to ``limit`` characters with an ellipsis, for summaries and logs."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """The body of ``POST /images``; ``None`` fields are left to the API's defaults."""

    prompt: str
    model: str | None = None
    aspect_ratio: str | None = None
    count: int | None = None
    seed: int | None = None
    email: str | None = None
    style_reference: str | None = None
    context_references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A list would make the value unhashable and mutable behind our back.
        object.__setattr__(self, "context_references", tuple(self.context_references))
        if len(self.context_references) > MAX_CONTEXT_REFERENCES:
            raise InvalidRequestError(
                f"{len(self.context_references)} context references; the API takes at most "
                f"{MAX_CONTEXT_REFERENCES}",
                reason="too many context references",
                hint="drop context references (imagen-4 takes 3, nano-banana 4)",
            )

    def to_json(self) -> dict[str, Any]:
        """The JSON body with the page's names, omitting what is not set."""
        body: dict[str, Any] = {"prompt": self.prompt}
        optional = (
            ("model", self.model),
            ("aspectRatio", self.aspect_ratio),
            ("count", self.count),
            ("seed", self.seed),
            ("email", self.email),
            ("styleReference_1", self.style_reference),
        )
        body.update((name, value) for name, value in optional if value is not None)
        for number, reference in enumerate(self.context_references, start=1):
            body[f"contextReference_{number}"] = reference
        return body

    def describe(self) -> str:
        """A short token-free description: model and the start of the prompt."""
        return f"{self.model or 'default-model'} {short_text(self.prompt)!r}"


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One generated image: checked JPEG bytes and what the API says about them."""

    data: bytes = field(repr=False)
    seed: int
    media_generation_id: str
    model_name_type: str
    prompt: str
    aspect_ratio: str

    def __repr__(self) -> str:
        return (
            f"GeneratedImage(<{len(self.data)} bytes JPEG>, seed={self.seed!r}, "
            f"media_generation_id={self.media_generation_id!r}, "
            f"model_name_type={self.model_name_type!r}, aspect_ratio={self.aspect_ratio!r})"
        )


@dataclass(frozen=True, slots=True)
class ImageResult:
    """A 200 from ``POST /images``; ``raw`` is the JSON without the ``encodedImage`` data."""

    images: tuple[GeneratedImage, ...]
    raw: Mapping[str, Any] = field(hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class UploadedAsset:
    """A 200 from ``POST /assets/{email}``: the id to use as a reference, and the size."""

    media_generation_id: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """One configured account from ``GET /accounts``; ``health`` is "OK" or an error text."""

    email: str
    health: str
    raw: Mapping[str, Any] = field(hash=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when the API reports the account healthy."""
        return self.health.strip().upper() == "OK"
