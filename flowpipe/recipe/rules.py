"""Per-model rules of the API page, checked before anything is sent.

- ``styleReference_1`` only on imagen-4;
- at most 3 context references on imagen-4, 4 on nano-banana;
- without a model, context references select nano-banana, else imagen-4 (the API's
  own auto-detection, made explicit so every node has a concrete model and key);
- a prompt has at most ``MAX_PROMPT_CHARS`` characters. The API page names no limit;
  this is flowpipe's own, far above what the models read (Imagen reads about 480
  tokens), so a runaway template cannot send megabytes as a billed request.
"""

from __future__ import annotations

__all__ = [
    "IMAGEN",
    "MAX_CONTEXT",
    "MAX_PROMPT_CHARS",
    "MODELS",
    "NANO",
    "auto_model",
    "default_fallback",
    "model_problem",
]

IMAGEN = "imagen-4"
NANO = "nano-banana"
MODELS = (IMAGEN, NANO)
MAX_CONTEXT = {IMAGEN: 3, NANO: 4}
MAX_PROMPT_CHARS = 10_000


def auto_model(context_count: int) -> str:
    """The model the API would pick when the request names none."""
    return NANO if context_count else IMAGEN


def model_problem(model: str, *, has_style: bool, context_count: int) -> str | None:
    """Why ``model`` cannot take this request, or None when it can."""
    if has_style and model != IMAGEN:
        return f"{model} takes no style reference (only {IMAGEN} does)"
    limit = MAX_CONTEXT[model]
    if context_count > limit:
        return f"{model} takes at most {limit} context references, this step has {context_count}"
    return None


def default_fallback(
    setting: str | None, model: str, *, has_style: bool, context_count: int
) -> tuple[str | None, str | None]:
    """``(fallback model or None, problem)`` for a step's ``fallback_model`` setting.

    Unset means the other model when it can take the request. ``none`` disables the
    switch. A fallback equal to the step's own model means no switch either, so a
    ``defaults: {fallback_model: imagen-4}`` does not break the imagen-4 steps.
    """
    if setting == "none":
        return None, None
    if setting is None:
        other = NANO if model == IMAGEN else IMAGEN
        fits = model_problem(other, has_style=has_style, context_count=context_count) is None
        return (other if fits else None), None
    if setting == model:
        return None, None
    problem = model_problem(setting, has_style=has_style, context_count=context_count)
    if problem:
        return None, f"fallback_model {setting!r} cannot take this request: {problem}"
    return setting, None
