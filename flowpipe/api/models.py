"""Typed values for what goes to the Flow API and what comes back.

Requests are plain values with a ``to_json`` that uses their dialect's names (from
``flowpipe.dialects``); results are built only by ``flowpipe.api.responses`` (and the
client's downloads) after every field has been checked, so a caller can trust their
types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowpipe.dialects import DEFAULT_DIALECT, ImageFormat, dialect
from flowpipe.errors import InvalidRequestError

__all__ = [
    "AccountInfo",
    "GeneratedImage",
    "ImageFormat",
    "ImageRequest",
    "ImageResult",
    "UploadedAsset",
    "UpscaledImage",
    "short_text",
]

EXTENSIONS = {"jpeg": "jpg", "png": "png"}


def short_text(text: str, limit: int = 24) -> str:
    """Cut ``text`` to ``limit`` characters with an ellipsis, for summaries and logs."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """The body of ``POST /images``; ``None`` fields are left to the API's defaults.

    ``dialect`` picks the field names and what is allowed: in 2025-11 the references
    are ``styleReference_1`` and ``contextReference_1..4``; in 2026-07 the
    ``context_references`` go out as ``reference_1..10``, there is no style, and
    ``captcha_retry`` is sent as ``captchaRetry``. A model, ratio or field the dialect
    does not have is refused here, before anything is sent.
    """

    prompt: str
    model: str | None = None
    aspect_ratio: str | None = None
    count: int | None = None
    seed: int | None = None
    email: str | None = None
    style_reference: str | None = None
    context_references: tuple[str, ...] = ()
    dialect: str = DEFAULT_DIALECT
    captcha_retry: int | None = None

    def __post_init__(self) -> None:
        # A list would make the value unhashable and mutable behind our back.
        object.__setattr__(self, "context_references", tuple(self.context_references))
        try:
            spoken = dialect(self.dialect)
        except ValueError as exc:
            raise _refuse(str(exc), "unknown dialect", "use a dialect flowpipe speaks") from None
        slots = spoken.reference_slots
        if len(self.context_references) > slots:
            limits = ", ".join(f"{m.name} {m.max_context}" for m in spoken.models.values())
            raise _refuse(
                f"{len(self.context_references)} context references; the API takes at most "
                f"{slots}",
                "too many context references",
                f"drop context references ({limits})",
            )
        if self.style_reference is not None and spoken.style_field is None:
            raise _refuse(f"api {spoken.name} has no style reference", "no style reference",
                          "send it as a context reference")
        if self.model is not None and spoken.canonical_model(self.model) is None:
            raise _refuse(f"api {spoken.name} has no model {self.model!r}", "unknown model",
                          f"use one of {', '.join(spoken.model_names)}")
        if self.aspect_ratio is not None and self.aspect_ratio not in spoken.aspect_ratios:
            raise _refuse(f"api {spoken.name} has no aspect ratio {self.aspect_ratio!r}",
                          "unknown aspect ratio", f"use one of {', '.join(spoken.aspect_ratios)}")
        if self.captcha_retry is not None:
            low, high = spoken.captcha_range
            if spoken.captcha_field is None or not low <= self.captcha_retry <= high:
                raise _refuse(f"api {spoken.name} takes no captchaRetry {self.captcha_retry!r}",
                              "bad captchaRetry",
                              f"use {low}-{high}" if spoken.captcha_field else "leave it unset")

    def to_json(self) -> dict[str, Any]:
        """The JSON body with the dialect's names, omitting what is not set."""
        spoken = dialect(self.dialect)
        body: dict[str, Any] = {"prompt": self.prompt}
        optional = (
            ("model", self.model),
            ("aspectRatio", self.aspect_ratio),
            ("count", self.count),
            ("seed", self.seed),
            ("email", self.email),
        )
        body.update((name, value) for name, value in optional if value is not None)
        if self.style_reference is not None:
            body[spoken.reference_field("style", 1)] = self.style_reference
        for number, reference in enumerate(self.context_references, start=1):
            body[spoken.reference_field("context", number)] = reference
        if self.captcha_retry is not None and spoken.captcha_field:
            body[spoken.captcha_field] = self.captcha_retry
        return body

    def describe(self) -> str:
        """A short token-free description: model and the start of the prompt."""
        return f"{self.model or 'default-model'} {short_text(self.prompt)!r}"


def _refuse(message: str, reason: str, hint: str) -> InvalidRequestError:
    return InvalidRequestError(message, reason=reason, hint=hint)


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One generated image: checked bytes and what the API says about them.

    ``format`` and the size in pixels are read from the bytes (2026-07 may send PNG);
    ``extension`` is the file name ending to write them under (``jpg`` or ``png``).
    """

    data: bytes = field(repr=False)
    seed: int
    media_generation_id: str
    model_name_type: str
    prompt: str
    aspect_ratio: str
    format: ImageFormat = "jpeg"
    width: int = 0  # 0: not read (an image made by hand); the client always reads it
    height: int = 0

    @property
    def extension(self) -> str:
        """``jpg`` or ``png``: how ``N.EXT`` should be named."""
        return EXTENSIONS[self.format]

    def __repr__(self) -> str:
        return (
            f"GeneratedImage(<{len(self.data)} bytes {self.format.upper()}>, seed={self.seed!r}, "
            f"media_generation_id={self.media_generation_id!r}, "
            f"model_name_type={self.model_name_type!r}, aspect_ratio={self.aspect_ratio!r})"
        )


@dataclass(frozen=True, slots=True)
class UpscaledImage:
    """A 200 from ``POST /images/upscale``: checked bytes of the enlarged image.

    The page answers ``encodedImage`` only; a ``mediaGenerationId`` is kept when one
    comes (None otherwise: a later reference to it must upload the bytes).
    """

    data: bytes = field(repr=False)
    resolution: str
    format: ImageFormat = "jpeg"
    media_generation_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)
    width: int = 0  # read from the bytes, as for ``GeneratedImage``
    height: int = 0

    @property
    def extension(self) -> str:
        """``jpg`` or ``png``."""
        return EXTENSIONS[self.format]


@dataclass(frozen=True, slots=True)
class ImageResult:
    """A 200 from ``POST /images``; ``raw`` is the JSON without the ``encodedImage`` data."""

    images: tuple[GeneratedImage, ...]
    raw: Mapping[str, Any] = field(hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class UploadedAsset:
    """A 200 from ``POST /assets/{email}``: the id to use as a reference, and the size.

    The size is None when the answer (the 2026 ``media`` shape) does not give it.
    """

    media_generation_id: str
    width: int | None
    height: int | None


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
