"""Validation of a ``POST /images`` body into a typed request, with the page's rules.

Errors are 400 answers with a plain ``error`` string, like useapi.net sends. Fields
the page does not name are ignored. Multipart/form fields arrive as strings, so
integers are accepted as decimal text there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flowpipe.sim.bodies import Answer, error

__all__ = ["ASPECT_RATIOS", "MODELS", "ImagesRequest", "parse_images_body"]

MODELS = ("imagen-4", "nano-banana")
ASPECT_RATIOS = ("landscape", "portrait", "square")
MAX_CONTEXT = {"imagen-4": 3, "nano-banana": 4}

_CONTEXT_KEY = re.compile(r"^contextReference_(\d+)$")


@dataclass(frozen=True, slots=True)
class ImagesRequest:
    """A valid /images request; ``model`` is resolved (auto-selection applied)."""

    prompt: str
    model: str
    aspect_ratio: str
    count: int
    seed: int | None
    email: str | None
    style_reference: str | None
    context_references: tuple[str, ...]

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


def parse_images_body(data: Mapping[str, object]) -> ImagesRequest:
    """Check a decoded body against the page; raise ``Answer(400, ...)`` if it breaks it."""
    prompt = data.get("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        raise _bad("prompt is required")
    if not isinstance(prompt, str):
        raise _bad("prompt must be a string")

    model = _optional_text(data, "model")
    if model is not None and model not in MODELS:
        raise _bad(f"Unsupported model {model}. Supported values: {', '.join(MODELS)}")

    aspect = _optional_text(data, "aspectRatio") or "landscape"
    if aspect not in ASPECT_RATIOS:
        raise _bad(
            f"Unsupported aspectRatio {aspect}. Supported values: {', '.join(ASPECT_RATIOS)}"
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
    style = _optional_text(data, "styleReference_1")
    numbered: list[tuple[int, str]] = []
    for key in data:
        match = _CONTEXT_KEY.match(key)
        if match is None:
            continue
        value = _optional_text(data, key)
        if value is not None:
            numbered.append((int(match.group(1)), value))
    context = tuple(value for _, value in sorted(numbered))

    if model is None:
        # The page: context references and no model select nano-banana. A style
        # reference only works on imagen-4, so it keeps imagen-4.
        model = "nano-banana" if context and style is None else "imagen-4"
    highest = max((index for index, _ in numbered), default=0)
    limit = MAX_CONTEXT[model]
    if len(context) > limit or highest > limit:
        raise _bad(f"Model {model} supports maximum {limit} context references")
    if style is not None and model != "imagen-4":
        raise _bad(f"Model {model} does not support styleReference_1 (imagen-4 only)")

    return ImagesRequest(
        prompt=prompt,
        model=model,
        aspect_ratio=aspect,
        count=count,
        seed=seed,
        email=email,
        style_reference=style,
        context_references=context,
    )
