"""``STEP.pick`` and ``STEP[k=v].pick`` in the plan: resolved like ``STEP.N``, index unknown."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flowpipe.errors import RecipeErrors, ReferenceError_
from flowpipe.planner import build_plan

RECIPE = """
version: 1
name: picks
steps:
  hero:
    matrix: {angle: [front, side]}
    prompt: "shoe, {{ angle }}"
  poster:
    prompt: poster
    context: ["hero[angle=side].pick", "hero[angle=front].0"]
"""


def _plan(tmp_path: Path, text: str = RECIPE):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return build_plan(path)


def test_a_pick_reference_resolves_to_the_node_with_no_index(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    pick, fixed = plan.nodes["poster"].context
    assert (pick.node, pick.index, pick.pick) == ("hero[angle=side]", None, True)
    assert (fixed.node, fixed.index, fixed.pick) == ("hero[angle=front]", 0, False)
    assert plan.nodes["poster"].deps == ("hero[angle=side]", "hero[angle=front]")
    request = plan.provisional_request("poster")
    assert request["contextReference_1"].endswith("#pick")
    assert request["contextReference_2"].endswith("#0")


def test_the_provisional_key_of_a_pick_differs_from_any_index(tmp_path: Path) -> None:
    by_pick = _plan(tmp_path).nodes["poster"].provisional_key
    by_index = _plan(tmp_path, RECIPE.replace("side].pick", "side].0")).nodes["poster"]
    assert by_pick != by_index.provisional_key


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param("herox.pick", "no step named 'herox'", id="unknown-step"),
        pytest.param("hero.pick", "has a matrix", id="no-selector"),
        pytest.param("hero[angle=back].pick", "no variant", id="unknown-variant"),
        pytest.param("poster.pick", "cannot use its own images", id="itself"),
    ],
)
def test_bad_pick_references_say_where_and_why(tmp_path: Path, ref: str, message: str) -> None:
    with pytest.raises((ReferenceError_, RecipeErrors)) as caught:
        _plan(tmp_path, RECIPE.replace('"hero[angle=side].pick"', f'"{ref}"'))
    assert message in str(caught.value)
    assert "r.yaml:9:15:" in str(caught.value)
