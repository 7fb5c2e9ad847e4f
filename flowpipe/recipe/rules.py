"""Per-model rules of the API, checked before anything is sent; read from the dialect table.

- a style reference only on a model that takes one (2025-11: imagen-4; 2026-07: none);
- at most ``max_context`` context references per model (2025-11: imagen-4 3,
  nano-banana 4; 2026-07: 10 each);
- without a model, the API's own auto-selection, made explicit so every node has a
  concrete model and key (2025-11: context references select nano-banana, else
  imagen-4; 2026-07: nano-banana-2-lite);
- a prompt has at most ``MAX_PROMPT_CHARS`` characters. The API pages name no limit;
  this is flowpipe's own, far above what the models read (Imagen reads about 480
  tokens), so a runaway template cannot send megabytes as a billed request.

Every function takes the dialect; the 2025-11 default keeps the old callers' meaning.
Models are canonical names (aliases are resolved by ``Dialect.canonical_model`` first).
"""

from __future__ import annotations

from flowpipe.dialects import DIALECTS, Dialect

__all__ = [
    "MAX_PROMPT_CHARS",
    "auto_model",
    "default_fallback",
    "model_problem",
    "reference_hint",
    "too_many_references",
]

_OLD = DIALECTS["2025-11"]
MAX_PROMPT_CHARS = 10_000


def auto_model(context_count: int, spoken: Dialect = _OLD) -> str:
    """The model the API would pick when the request names none."""
    return spoken.auto_model(context_count)


def _kind(spoken: Dialect) -> str:
    return "context references" if spoken.style_field else "references"


def model_problem(
    model: str, *, has_style: bool, context_count: int, spoken: Dialect = _OLD
) -> str | None:
    """Why ``model`` cannot take this request, or None when it can."""
    facts = spoken.models[model]
    if has_style and not facts.takes_style:
        takers = [m.name for m in spoken.models.values() if m.takes_style]
        only = f" (only {' and '.join(takers)} does)" if takers else ""
        return f"{model} takes no style reference{only}"
    if context_count > facts.max_context:
        return (
            f"{model} takes at most {facts.max_context} {_kind(spoken)}, "
            f"this step has {context_count}"
        )
    return None


def reference_hint(model: str, spoken: Dialect = _OLD) -> str:
    """What to do about too many references on ``model``: fewer, or a model that takes more."""
    limit = spoken.models[model].max_context
    more = max(spoken.models.values(), key=lambda m: m.max_context)
    hint = f"use at most {limit} {_kind(spoken)}"
    if more.max_context > limit:
        hint += f", or 'model: {more.name}' for {more.max_context}"
        return hint
    wider = max(DIALECTS.values(), key=lambda d: max(m.max_context for m in d.models.values()))
    most = max(m.max_context for m in wider.models.values())
    if most > limit:
        hint += f", or `api: {wider.name}` for up to {most}"
    return hint


def too_many_references(
    spoken: Dialect, written_model: object, count: int
) -> tuple[str, str] | None:
    """``(message, hint)`` when ``count`` context references are more than the model takes.

    ``written_model`` is the step's model as written (a name, an alias, or anything
    else: a template or nothing, when the API's own choice is named). Every message
    about too many references names the model and its limit, whichever check finds it.
    """
    name = spoken.canonical_model(written_model) if isinstance(written_model, str) else None
    model = name or spoken.auto_model(count)
    problem = model_problem(model, has_style=False, context_count=count, spoken=spoken)
    if problem is None:
        return None
    chosen = "" if name else f"no model is set, so the API would pick {model}, but "
    return chosen + problem, reference_hint(model, spoken)


def default_fallback(
    setting: str | None,
    model: str,
    *,
    has_style: bool,
    context_count: int,
    spoken: Dialect = _OLD,
) -> tuple[str | None, str | None]:
    """``(fallback model or None, problem)`` for a step's ``fallback_model`` setting.

    Unset means the model's usual fallback (2025-11: the other model) when it can take
    the request. ``none`` disables the switch. A fallback equal to the step's own
    model means no switch either, so a ``defaults: {fallback_model: imagen-4}`` does
    not break the imagen-4 steps. An alias names its model.
    """
    if setting == "none":
        return None, None
    if setting is None:
        other = spoken.models[model].fallback
        if other is None:
            return None, None
        fits = model_problem(
            other, has_style=has_style, context_count=context_count, spoken=spoken
        ) is None
        return (other if fits else None), None
    chosen = spoken.canonical_model(setting) or setting
    if chosen == model:
        return None, None
    problem = model_problem(
        chosen, has_style=has_style, context_count=context_count, spoken=spoken
    )
    if problem:
        return None, f"fallback_model {setting!r} cannot take this request: {problem}"
    return chosen, None
