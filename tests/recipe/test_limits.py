"""Templates are bounded in size and steps before they can allocate or spin much.

Each attack here took seconds and up to gigabytes before the limits existed (issue 15,
item 2); now each is a TemplateError at the template's place. The control cases show
that ordinary templates still render exactly as Jinja renders them.
"""

from __future__ import annotations

from typing import Any

import pytest
from security.corpus import TEMPLATE_ATTACKS

from flowpipe.errors import Location, TemplateError
from flowpipe.recipe.limits import RenderLimits
from flowpipe.recipe.render import Renderer

VARS: dict[str, Any] = {"product": "trail shoe", "palettes": ["teal", "amber"], "n": 3}
LIMITS = RenderLimits()


def render(source: str, renderer: Renderer | None = None) -> str:
    return (renderer or Renderer()).render(
        source, VARS,
        what=lambda: "step 'a': prompt", where=lambda line: Location("r.yaml", 4 + line, 13),
    )


# Each of these asks for far more than any prompt needs: characters, digits or loop turns.
# The hostile corpus runs the same ones through `flowpipe validate` under process limits.
ATTACKS = TEMPLATE_ATTACKS


@pytest.mark.parametrize("source", ATTACKS.values(), ids=ATTACKS.keys())
def test_runaway_templates_are_refused_at_the_template(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(source)
    text = str(caught.value)
    assert text.startswith("r.yaml:5:13: step 'a': prompt: "), text
    assert "limit" in text or "would build more than" in text, text


def test_the_limit_names_the_figure_and_the_docs() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{ 'x'|center(10**9) }}")
    assert f"{LIMITS.max_text:,}" in str(caught.value)
    assert "docs/recipes.md" in str(caught.value)


CONTROLS = {
    "filters": "{{ product|upper }} in {{ palettes|join(' and ') }}",
    "center": "[{{ 'x'|center(9) }}]",
    "format": "{{ '%05.1f|%-4s|%03d' % (2.25, 'ab', n) }}",
    "str-format": "{{ '{:>6}|{:^5}|{}'.format(product[:3], n, palettes) }}",
    "loop": "{% for p in palettes %}{{ loop.index }}:{{ p }} {% endfor %}",
    "nested-loop": "{% for i in range(30) %}{% for j in range(30) %}.{% endfor %}{% endfor %}",
    "namespace": (
        "{% set ns = namespace(s='') %}{% for p in palettes %}{% set ns.s = ns.s ~ p %}"
        "{% endfor %}{{ ns.s }}"
    ),
    "macro": "{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(product) }}{{ m(n) }}",
    "indent": "{{ 'a\\nb'|indent(2, first=true) }}",
    "replace": "{{ product|replace('shoe', 'boot') }} {{ 'a-b'.replace('-', ' + ') }}",
    "sum": "{{ [1, 2, 3]|sum }} {{ [[1], [2]]|sum(start=[]) }}",
    "recursive": (
        "{% for x in [[1, [2]], 3] recursive %}{% if x is iterable %}{{ loop(x) }}"
        "{% else %}{{ x }}{% endif %}{% endfor %}"
    ),
    "big-but-allowed": "{{ ('ab' * 20000)|length }} {{ range(20000)|sum }}",
    "compare": "{% if product == 'trail shoe' and n in [1, 2, 3] and n is odd %}yes{% endif %}",
    "autoescape-block": "{% autoescape true %}{{ '<b>' ~ product }}{% endautoescape %}",
    "tojson": "{{ palettes|tojson }} {{ {'a': 1}|tojson(indent=2) }}",
}


@pytest.mark.parametrize("source", CONTROLS.values(), ids=CONTROLS.keys())
def test_ordinary_templates_render_as_jinja_renders_them(source: str) -> None:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    assert render(source) == env.from_string(source).render(VARS)


def test_a_loop_at_exactly_the_step_limit_is_allowed() -> None:
    small = RenderLimits(max_steps=1_000)
    renderer = Renderer(limits=small)
    assert render("{% for i in range(990) %}{% endfor %}ok", renderer) == "ok"
    with pytest.raises(TemplateError, match="1,000 steps"):
        render("{% for i in range(1001) %}{% endfor %}", renderer)


def test_every_render_gets_its_own_budget_and_the_recipe_a_total() -> None:
    limits = RenderLimits(max_steps=1_000, max_total_steps=5_000)
    renderer = Renderer(limits=limits)
    source = "{% for i in range(900) %}{% endfor %}ok"
    for _ in range(5):  # 5 x 900 steps: each render is under its own limit
        assert render(source, renderer) == "ok"
    with pytest.raises(TemplateError, match="5,000 steps in all"):
        render(source, renderer)


def test_plain_substitution_output_is_bounded_too() -> None:
    with pytest.raises(TemplateError, match="would build more than"):
        Renderer().render(
            "{{ big }}", {"big": "y" * (LIMITS.max_text + 1)},
            what=lambda: "p", where=lambda line: Location("r.yaml", line, 1),
        )
