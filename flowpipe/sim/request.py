"""Validation of a ``POST /images`` body into a typed request, with the dialect's rules.

Errors are 400 answers with a plain ``error`` string, like useapi.net sends. Fields
neither dialect names are ignored. Multipart/form fields arrive as strings, so
integers are accepted as decimal text there. What differs between dialects (models
and aliases, ratios, reference fields and limits, captcha fields) is read from
``flowpipe.dialects``; the 2025-11 texts are the page's, word for word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flowpipe.dialects import DIALECTS, Dialect
from flowpipe.sim.bodies import Answer, error

__all__ = [
    "ImagesRequest",
    "parse_images_body",
    "parse_upscale_body",
]

_OLD = DIALECTS["2025-11"]
_NUMBERED = re.compile(r"^(?P<field>styleReference|contextReference|reference)_(?P<n>\d+)$")


@dataclass(frozen=True, slots=True)
class ImagesRequest:
    """A valid /images request; ``model`` is canonical (aliases and auto-selection applied)."""

    prompt: str
    model: str
    aspect_ratio: str
    count: int
    seed: int | None
    email: str | None
    style_reference: str | None
    context_references: tuple[str, ...]
    captcha_retry: int | None = None

    @property
    def references(self) -> tuple[str, ...]:
        """Style reference first, then context references in order."""
        style = (self.style_reference,) if self.style_reference else ()
        return style + self.context_references


def _bad(text: str) -> Answer:
    return Answer(400, error(text))


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _optional_text(data: Mapping[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string")
    return value


def _references(
    data: Mapping[str, object], spoken: Dialect
) -> tuple[str | None, list[tuple[int, str]]]:
    """The style reference and the numbered references of the dialect's own fields.

    Fields of another dialect (``contextReference_1`` in 2026-07) are ignored, like
    every field the dialect does not name.
    """
    context_name = spoken.context_field.split("_", 1)[0]
    style = _optional_text(data, spoken.style_field) if spoken.style_field else None
    numbered: list[tuple[int, str]] = []
    for key in data:
        match = _NUMBERED.match(key)
        if match is None or match.group("field") != context_name:
            continue
        value = _optional_text(data, key)
        if value is not None:
            numbered.append((int(match.group("n")), value))
    return style, numbered


def _captcha(data: Mapping[str, object], spoken: Dialect) -> int | None:
    if not spoken.captcha_field:
        return None
    given = [name for name in spoken.captcha_exclusive if data.get(name) not in (None, "")]
    if len(given) > 1:
        raise _bad(f"Only one of {', '.join(spoken.captcha_exclusive)} may be given")
    if spoken.captcha_field not in given:
        return None
    low, high = spoken.captcha_range
    value = _integer(data[spoken.captcha_field])
    if value is None or not low <= value <= high:
        raise _bad(f"{spoken.captcha_field} must be an integer between {low} and {high}")
    return value


def parse_images_body(data: Mapping[str, object], spoken: Dialect = _OLD) -> ImagesRequest:
    """Check a decoded body against the dialect; raise ``Answer(400, ...)`` if it breaks it."""
    prompt = data.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise _bad("prompt is required")
    if not isinstance(prompt, str):
        raise _bad("prompt must be a string")

    written = _optional_text(data, "model")
    model = spoken.canonical_model(written) if written is not None else None
    if written is not None and model is None:
        raise _bad(
            f"Unsupported model {written}. Supported values: {', '.join(spoken.model_names)}"
        )

    aspect = _optional_text(data, "aspectRatio") or spoken.default_aspect_ratio
    if aspect not in spoken.aspect_ratios:
        raise _bad(
            f"Unsupported aspectRatio {aspect}. Supported values: "
            f"{', '.join(spoken.aspect_ratios)}"
        )

    count = 4
    if data.get("count") is not None:
        parsed = _integer(data["count"])
        if parsed is None or not 1 <= parsed <= 4:
            raise _bad("count must be an integer between 1 and 4")
        count = parsed

    seed: int | None = None
    if data.get("seed") is not None and data.get("seed") != "":
        seed = _integer(data["seed"])
        if seed is None or seed < 0:
            raise _bad("seed must be an integer >= 0")

    email = _optional_text(data, "email")
    style, numbered = _references(data, spoken)
    context = tuple(value for _, value in sorted(numbered))

    if model is None:
        # The page: context references and no model select nano-banana. A style
        # reference only works on imagen-4, so it keeps imagen-4.
        model = spoken.auto_model(len(context) if style is None else 0)
    facts = spoken.models[model]
    highest = max((index for index, _ in numbered), default=0)
    limit = facts.max_context
    if len(context) > limit or highest > limit:
        kind = "context references" if spoken.style_field else "references"
        raise _bad(f"Model {model} supports maximum {limit} {kind}")
    if style is not None and not facts.takes_style:
        raise _bad(f"Model {model} does not support styleReference_1 (imagen-4 only)")
    if aspect in spoken.needs_reference and not (context or style):
        raise _bad(
            f"aspectRatio {aspect} is only valid with at least one "
            f"{spoken.context_field.format(n='*')}"
        )

    return ImagesRequest(
        prompt=prompt,
        model=model,
        aspect_ratio=aspect,
        count=count,
        seed=seed,
        email=email,
        style_reference=style,
        context_references=context,
        captcha_retry=_captcha(data, spoken),
    )


def parse_upscale_body(data: Mapping[str, object], spoken: Dialect) -> tuple[str, str, int | None]:
    """``(mediaGenerationId, resolution, captchaRetry)`` of a ``POST /images/upscale`` body."""
    media_id = _optional_text(data, "mediaGenerationId")
    if media_id is None:
        raise _bad("mediaGenerationId is required")
    resolution = _optional_text(data, "resolution")
    if resolution not in spoken.upscale_resolutions:
        raise _bad(
            f"Unsupported resolution {resolution}. Supported values: "
            f"{', '.join(spoken.upscale_resolutions)}"
        )
    return media_id, resolution, _captcha(data, spoken)
