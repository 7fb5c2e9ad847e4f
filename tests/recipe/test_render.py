from __future__ import annotations

from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flowpipe.errors import Location, TemplateError
from flowpipe.recipe.render import Renderer

VARS: dict[str, Any] = {
    "product": "trail shoe",
    "n": 3,
    "ratio": 1.5,
    "flag": True,
    "nothing": None,
    "palettes": ["teal", "amber"],
    "spec": {"a": 1},
    "name": "Zoë ✓",
}


def render(source: str, variables: dict[str, Any] | None = None) -> str:
    return Renderer().render(
        source, VARS if variables is None else variables,
        what=lambda: "step 'hero': prompt", where=lambda line: Location("r.yaml", 10 + line, 5),
    )


@pytest.mark.parametrize(
    "source",
    [
        "{{ product }}",
        "a {{ product }} b {{n}} c {{  ratio }}",
        "{{ flag }} {{ nothing }} {{ palettes }} {{ spec }}",
        "{{ name }} trailing newline\n",
        "{{ product }}\n\n",
        "{{ product | upper }} {{ palettes | join(' and ') }}",
        "{% if flag %}yes{% endif %} {# comment #}",
        "{{ range(3) | list }} {{ n * 2 }} {{ 2 ** 10 }}",
        "literal { brace } and {{ product }}",
    ],
    ids=["name", "several", "types", "unicode-newline", "two-newlines", "filters", "blocks",
         "globals", "lone-brace"],
)
def test_output_matches_jinja(source: str) -> None:
    """The fast substitution path and the sandbox both print what Jinja prints."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    assert render(source) == env.from_string(source).render(VARS)


def test_plain_text_is_returned_untouched() -> None:
    assert render("no template here\n") == "no template here\n"


@pytest.mark.parametrize(
    ("source", "reason", "line"),
    [
        ("{{ ''.__class__.__mro__ }}", "unsafe template", 11),
        ("{{ product.__class__ }}", "unsafe template", 11),
        ("{{ cycler.__init__.__globals__ }}", "unsafe template", 11),
        ("{{ palettes.append('x') }}", "unsafe template", 11),
        ("{{ 'a' * 1000000 }}", "would build more than", 11),
        ("{{ 10 ** 100000 }}", "number too large", 11),
        ("{% include 'secret.txt' %}", "cannot include or import", 11),
        ("{% import 'x' as y %}", "cannot include or import", 11),
        ("{{ prodcut }}", "variable 'prodcut' is undefined (did you mean 'product'?)", 11),
        ("line one\n{{ zzz }}", "variable 'zzz' is undefined", 12),
        ("{{ spec.b }}", "has no attribute 'b'", 11),
        ("{{ product }", "template syntax", 11),
        ("{{ product | nope }}", "No filter named 'nope'", 11),
        ("{{ n / 0 }}", "ZeroDivisionError", 11),
        ("{{ range(10**9) | list }}", "OverflowError", 11),
    ],
    ids=["mro", "attr-dunder", "globals", "mutation", "big-string", "big-power", "include",
         "import", "undefined", "undefined-line-2", "missing-attr", "syntax", "filter",
         "zero-division", "huge-range"],
)
def test_failures_are_template_errors_at_the_template(source: str, reason: str, line: int) -> None:
    with pytest.raises(TemplateError) as info:
        render(source)
    assert reason in str(info.value)
    assert info.value.location == Location("r.yaml", line, 5)
    assert str(info.value).startswith(f"r.yaml:{line}:5: step 'hero': prompt")


def test_undefined_in_a_simple_template_falls_back_to_jinja_error() -> None:
    renderer = Renderer()
    where = lambda line: Location("r.yaml", line, 1)  # noqa: E731
    assert renderer.render("{{ a }}", {"a": 1}, what=lambda: "x", where=where) == "1"
    with pytest.raises(TemplateError, match="variable 'a' is undefined"):
        renderer.render("{{ a }}", {"b": 1}, what=lambda: "x", where=where)


@pytest.mark.parametrize(
    ("source", "reason", "line"),
    [
        ("{{ lipsum(1) }}", "lipsum() writes other words on every run", 11),
        ("{{ lipsum(n=10**6) }}", "lipsum() writes other words on every run", 11),
        ("a\n{{ palettes|random }}", "filter 'random' picks another item on every run", 12),
        ("{{ palettes|reverse }}", "prints a list_reverseiterator holding a memory address", 11),
        ("{{ palettes|map('upper') }}", "prints a generator holding a memory address", 11),
        ("{{ 'x ' ~ joiner() }}", "prints text holding a memory address", 11),
        ("{{ lipsum }}", "prints a function holding a memory address", 11),
    ],
    ids=["lipsum", "lipsum-huge", "random", "iterator", "generator", "object-as-text",
         "function"],
)
def test_what_differs_from_run_to_run_is_refused(source: str, reason: str, line: int) -> None:
    """A prompt is part of a request key: chance or an address in it, and no run would
    ever find the last one's images in the cache."""
    with pytest.raises(TemplateError) as info:
        render(source)
    assert str(info.value).startswith(f"r.yaml:{line}:5: step 'hero': prompt: {reason}")
    assert "keys must be stable" in str(info.value)


def test_deterministic_helpers_still_work() -> None:
    """``cycler``, ``joiner`` and finished iterators print the same on every run."""
    source = ("{% set c = cycler('a', 'b') %}{% set j = joiner('/') %}"
              "{% for p in palettes %}{{ j() }}{{ c.next() }}{{ p }}{% endfor %} "
              "{{ palettes|reverse|join(',') }} {{ palettes|map('upper')|list }}")
    assert render(source) == "ateal/bamber amber,teal ['TEAL', 'AMBER']"
