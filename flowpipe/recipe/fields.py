"""Request fields a matrix or a template may set per node: model, aspectRatio, count, seed
(and an upscale step's resolution, by its matrix).

An art director's grid is one step: ``matrix: {model: [imagen-4, nano-banana],
aspectRatio: [landscape, portrait, square]}`` makes six nodes, and ``model: "{{ engine
}}"`` takes the model from a matrix value or a var. This module says which fields those
are, what a matrix value or a rendered template means for each, and what is wrong with
one that does not fit; names of models and ratios are the dialect's business
(``flowpipe.recipe.dialect.value_problem``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flowpipe.errors import Location

__all__ = [
    "MAX_SEED",
    "REQUEST_FIELDS",
    "UPSCALE_FIELDS",
    "FieldValue",
    "field_problem",
    "field_value",
    "is_field_template",
]

#: The request fields a matrix variable of the same name, or a template, may set.
REQUEST_FIELDS = ("model", "aspectRatio", "count", "seed")
#: The upscale request's own field a matrix variable of the same name sets on an upscale
#: step (a generate step has none: a matrix variable so named is an error there).
UPSCALE_FIELDS = ("resolution",)
MAX_SEED = 2**53 - 1  # the schema's bound: JSON readers keep integers exact up to here
_TEMPLATE = re.compile(r"\{[{%]")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class FieldValue:
    """A request field's value for one node, and where it was written."""

    value: object
    location: Location


def is_field_template(value: object) -> bool:
    """True for a setting that is a template (``"{{ engine }}"``), rendered per node."""
    return isinstance(value, str) and _TEMPLATE.search(value) is not None


def field_problem(key: str, value: object) -> str | None:
    """Why ``value`` (a matrix value or a rendered template) cannot be ``key``, or None.

    Only ``count`` and ``seed`` are checked here; models and ratios depend on the dialect.
    """
    if key == "count":
        number = _integer(value)
        if number is None or not 1 <= number <= 4:
            return "must be an integer from 1 to 4"
    elif key == "seed":
        if value == "random":
            return None
        number = _integer(value)
        if number is None or not 0 <= number <= MAX_SEED:
            return "must be an integer >= 0 or 'random'"
    elif not isinstance(value, str):
        return f"must be a name, not {value!r}"
    return None


def field_value(key: str, value: object) -> object:
    """The value a node's request takes (``count`` an int, ``seed`` an int or None for
    ``random``, names as text); ValueError with the reason when it does not fit."""
    problem = field_problem(key, value)
    if problem is not None:
        raise ValueError(problem)
    if key == "count":
        return _integer(value)
    if key == "seed":
        return None if value == "random" else _integer(value)
    return str(value).strip()


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return None
