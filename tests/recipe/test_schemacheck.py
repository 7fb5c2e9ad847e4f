"""The compiled schema check answers exactly what jsonschema answers, or says it is unsure.

A wrong "valid" would let a bad recipe through without its message, so every document
here is judged by both: the compiled check (flowpipe.recipe.schemacheck) and
``Draft202012Validator.is_valid`` on the same inlined schema.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowpipe.errors import RecipeError
from flowpipe.recipe.load import load_document
from flowpipe.recipe.schema import schema_check, schema_validator
from flowpipe.recipe.schemacheck import Unsure, compile_check

ROOT = Path(__file__).parents[2]
DOCUMENTS = sorted((ROOT / "tests/recipe/broken").glob("*.yaml")) + sorted(
    (ROOT / "examples").glob("*.yaml")
)


def _agree(data: Any) -> bool | None:
    """Both answers, checked equal; None when the compiled check is unsure."""
    check = schema_check()
    assert check is not None
    try:
        fast = check(data)
    except Unsure:
        return None
    assert fast == schema_validator().is_valid(data), data
    return fast


def test_the_shipped_schema_compiles() -> None:
    assert schema_check() is not None


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.stem for p in DOCUMENTS])
def test_agrees_on_the_corpus_and_the_examples(path: Path) -> None:
    try:
        doc = load_document(path)
    except RecipeError:
        pytest.skip("not loadable YAML")
    _agree(doc.data)


def test_the_corpus_has_both_answers() -> None:
    answers = set()
    for path in DOCUMENTS:
        try:
            answers.add(_agree(load_document(path).data))
        except RecipeError:
            continue
    assert {True, False} <= answers


def test_an_unknown_keyword_leaves_it_to_jsonschema() -> None:
    assert compile_check({"type": "object", "dependentRequired": {"a": ["b"]}}) is None
    assert compile_check({"type": "string", "format": "email"}) is None


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"type": "integer"}, 3.0, True),  # an integer-valued float is an integer
        ({"type": "integer"}, True, False),  # a boolean is not
        ({"type": "number"}, False, False),
        ({"const": 1}, 1.0, True),
        ({"const": 1}, True, False),
        ({"enum": ["a", 1]}, [1], False),
        ({"uniqueItems": True}, [1, 1.0], False),
        ({"uniqueItems": True}, [1, True], True),
        ({"uniqueItems": True}, [0, False, None, "0"], True),
        ({"minimum": 0}, float("nan"), True),  # NaN is never "less than": jsonschema too
        ({"not": {"required": ["a"]}}, {"b": 1}, True),
        ({"patternProperties": {"^x": {"type": "string"}}, "properties": {"xa": {}}},
         {"xa": 1}, False),  # a key matching a pattern is checked by it, even if known
        ({"additionalProperties": False, "patternProperties": {"^x": True}}, {"xb": 1}, True),
    ],
)
def test_edge_cases_match_jsonschema(schema: dict[str, Any], value: Any, valid: bool) -> None:
    from jsonschema import Draft202012Validator

    check = compile_check(schema)
    assert check is not None
    assert Draft202012Validator(schema).is_valid(value) is valid
    assert check(value) is valid


@pytest.mark.parametrize("items", [[datetime.date(2026, 1, 1)], [math.nan, 1.5], [[1], [1]]])
def test_values_it_cannot_judge_exactly_are_left_to_jsonschema(items: list[Any]) -> None:
    check = compile_check({"uniqueItems": True})
    assert check is not None
    with pytest.raises(Unsure):
        check(items)


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**16), st.floats(), st.text(max_size=12),
    st.dates(),
    st.sampled_from(["1", "imagen-4", "2026-07", "hero.0", "assets.logo", "{{ a }}", "random",
                     "step", "assets", "CON", "x-base", "a@b.io", "", " ", "upscale"]),
)
KEYS = st.sampled_from(
    ["version", "name", "api", "defaults", "vars", "assets", "accounts", "steps", "x-a",
     "description", "prompt", "model", "aspectRatio", "count", "seed", "style", "context",
     "upscale", "resolution", "captchaRetry", "matrix", "fallback_model",
     "moderation_retries", "hero", "a", "b", "step", "assets", "nul", "x"]
) | st.text(max_size=5)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)


def _valid_recipe() -> dict[str, Any]:
    return {
        "version": 1, "name": "n", "api": "2026-07",
        "defaults": {"model": "imagen-4", "count": 2, "seed": "random"},
        "vars": {"a": "x"}, "assets": {"logo": "logo.png"}, "accounts": ["me@example.com"],
        "x-base": {"k": 1},
        "steps": {
            "hero": {"prompt": "p {{ a }}", "matrix": {"a": ["x", 1, 1.5, True]}, "count": 4},
            "up": {"upscale": "hero[a=x].0", "resolution": "4k"},
            "poster": {"prompt": "q", "context": ["hero[a=x].0", "assets.logo"], "seed": 3},
        },
    }


@settings(max_examples=400, deadline=None)
@given(st.lists(KEYS, min_size=1, max_size=4), VALUES)
def test_agrees_on_generated_documents(path: list[str], value: Any) -> None:
    """A valid recipe with one value somewhere replaced: both checks give one answer."""
    recipe = _valid_recipe()
    assert _agree(recipe) is True
    node: Any = recipe
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    _agree(recipe)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_agrees_on_arbitrary_values(value: Any) -> None:
    _agree(value)


EDGES = st.sampled_from(
    [0, 1, 4, 5, -1, 4.0, 1.5, 10, 11, 9007199254740991, 9007199254740992, True, False, None,
     "random", "{{ n }}", "{ n }", "", " ", "imagen-4", "hero.0", "x" * 1001, "a\nb",
     "me@example.com", "not an email", "2025-11", "2026-07", "4k", float("inf")]
)


def _mostly(*valid: Any) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes one at some edge of the schema."""
    return st.integers(0, 15).flatmap(lambda i: EDGES if i == 7 else st.sampled_from(valid))


STEPS = st.fixed_dictionaries(
    {"prompt": _mostly("p", "{{ a }}")},
    optional={
        "model": _mostly("imagen-4", "{{ m }}"), "aspectRatio": _mostly("square", "16:9"),
        "count": _mostly(1, 4, 2.0, "{{ n }}"), "seed": _mostly(0, "random", 9007199254740991),
        "style": _mostly("hero.0"), "upscale": _mostly("hero.0"), "resolution": _mostly("4k"),
        "captchaRetry": _mostly(1, 10), "fallback_model": _mostly("none"),
        "moderation_retries": _mostly(0, 10), "description": _mostly("d"),
        "context": st.lists(_mostly("hero.0", "assets.logo"), min_size=1, max_size=11),
        "matrix": st.dictionaries(_mostly("a", "model"),
                                  st.lists(_mostly("x", 1, 2.5, True, 1.0), min_size=1,
                                           max_size=3) | EDGES, min_size=1, max_size=2),
    },
)
RECIPES = st.fixed_dictionaries(
    {"version": _mostly(1), "name": _mostly("n"),
     "steps": st.dictionaries(_mostly("hero", "x-y", "_1"), STEPS, min_size=1, max_size=3)},
    optional={"api": _mostly("2025-11", "2026-07"), "accounts": st.lists(
        _mostly("me@example.com", "you@example.com"), min_size=1, max_size=3),
              "defaults": STEPS.map(lambda step: {k: v for k, v in step.items()
                                                  if k not in ("prompt", "style", "context")}),
              "vars": st.dictionaries(_mostly("a", "b"), EDGES, max_size=2),
              "assets": st.dictionaries(_mostly("logo"), _mostly("logo.png"), max_size=2)},
)


@settings(max_examples=600, deadline=None)
@given(RECIPES)
def test_agrees_on_recipe_shaped_documents(recipe: dict[str, Any]) -> None:
    """Recipes built mostly of valid values, some at the schema's edges: both answers."""
    _agree(recipe)
