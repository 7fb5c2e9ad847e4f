"""Grids: a matrix (or a template) sets request fields per node; ``x-`` keys hold anchors."""

from __future__ import annotations

import pytest

from flowpipe.errors import RecipeError, RecipeErrors
from flowpipe.planner import build_plan
from flowpipe.recipe.expand import derive_seed
from flowpipe.recipe.fields import field_problem, field_value, is_field_template

from .conftest import WriteRecipe


def messages(exc: RecipeError | RecipeErrors) -> list[str]:
    return [str(e) for e in exc.errors] if isinstance(exc, RecipeErrors) else [str(exc)]


def test_a_ratio_by_model_matrix_makes_six_nodes_with_those_fields(
    write_recipe: WriteRecipe,
) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: grid
        steps:
          shot:
            matrix:
              aspectRatio: [landscape, portrait, square]
              model: [imagen-4, nano-banana]
            prompt: "a teapot, {{ aspectRatio }}"
            count: 1
    """))
    fields = [(n.aspect_ratio, n.model, n.prompt) for n in plan.nodes.values()]
    assert fields == [
        (ratio, model, f"a teapot, {ratio}")
        for ratio in ("landscape", "portrait", "square")
        for model in ("imagen-4", "nano-banana")
    ]
    first = plan.nodes["shot[aspectRatio=landscape,model=imagen-4]"]
    assert plan.provisional_request(first.id)["model"] == "imagen-4"
    keys = {n.provisional_key for n in plan.nodes.values()}
    assert len(keys) == 6


def test_count_and_seed_from_the_matrix(write_recipe: WriteRecipe) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: grid
        steps:
          shot:
            matrix: {count: [1, 3], seed: [5, random]}
            prompt: p
    """))
    got = {n.id: (n.count, n.seed) for n in plan.nodes.values()}
    assert got == {
        "shot[count=1,seed=5]": (1, 5), "shot[count=1,seed=random]": (1, None),
        "shot[count=3,seed=5]": (3, 5), "shot[count=3,seed=random]": (3, None),
    }


def test_fields_may_be_templates_of_matrix_values_and_vars(write_recipe: WriteRecipe) -> None:
    path = write_recipe("""
        version: 1
        name: grid
        vars: {n: 2}
        defaults: {model: "{{ engine }}"}
        steps:
          shot:
            matrix: {engine: [imagen-4, nano-banana]}
            count: "{{ n }}"
            seed: "{{ 100 + n }}"
            prompt: p
          plain:
            prompt: q
            model: "{{ 'nano-banana' }}"
            seed: "{% if n > 1 %}random{% else %}3{% endif %}"
    """)
    plan = build_plan(path)
    shot = plan.nodes["shot[engine=nano-banana]"]
    assert (shot.model, shot.count, shot.seed) == ("nano-banana", 2, 102)
    assert plan.nodes["shot[engine=imagen-4]"].model == "imagen-4"
    assert (plan.nodes["plain"].model, plan.nodes["plain"].seed) == ("nano-banana", None)
    overridden = build_plan(path, overrides={"n": 1})
    assert overridden.nodes["shot[engine=imagen-4]"].count == 1
    assert overridden.nodes["plain"].seed == 3


def test_a_fixed_seed_elsewhere_is_unchanged_and_derived_seeds_differ_per_variant(
    write_recipe: WriteRecipe,
) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: grid
        steps:
          shot:
            matrix: {model: [imagen-4, nano-banana]}
            prompt: p
    """))
    for node in plan.nodes.values():
        assert node.seed == derive_seed("grid", node.id)


def test_references_know_each_variants_count(write_recipe: WriteRecipe) -> None:
    path = write_recipe("""
        version: 1
        name: grid
        steps:
          shot:
            matrix: {count: [1, 4]}
            prompt: p
          use:
            prompt: q
            context: ["shot[count=4].3"]
          bad:
            prompt: q
            context: ["shot[count=1].1"]
    """)
    with pytest.raises(RecipeError) as caught:
        build_plan(path)
    assert messages(caught.value) == [
        f"{path}:12:15: step 'bad': context 'shot[count=1].1': node 'shot[count=1]' makes 1 "
        "image (0) (use an index from 0)"
    ]


def test_model_rules_are_checked_per_variant_and_name_it(write_recipe: WriteRecipe) -> None:
    path = write_recipe("""
        version: 1
        name: grid
        steps:
          hero: {prompt: a}
          shot:
            matrix:
              ratio: [landscape, square]
              model: [imagen-4, nano-banana]
            prompt: b
            style: hero.0
    """)
    with pytest.raises(RecipeError) as caught:
        build_plan(path)
    assert messages(caught.value) == [
        f"{path}:8:25: step 'shot[ratio=landscape,model=nano-banana]': nano-banana takes no "
        "style reference (only imagen-4 does) (take nano-banana out of the grid, or remove "
        "the style reference)"
    ]


def test_a_template_that_renders_a_bad_value_names_the_variant(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe("""
        version: 1
        name: grid
        api: "2026-07"
        steps:
          shot:
            matrix: {r: ["1:1", square]}
            aspectRatio: "{{ r }}"
            prompt: b
    """)
    with pytest.raises(RecipeError) as caught:
        build_plan(path)
    assert messages(caught.value) == [
        f"{path}:7:18: step 'shot[r=square]': aspectRatio: '{{{{ r }}}}' renders to 'square': "
        "'square' is not one of 16:9, 4:3, 1:1, 3:4, 9:16, auto (write '1:1'; square needs "
        "`api: 2025-11`)"
    ]


def test_an_old_name_from_a_matrix_warns_at_its_value(write_recipe: WriteRecipe) -> None:
    path = write_recipe("""
        version: 1
        name: grid
        api: "2026-07"
        steps:
          shot:
            matrix: {model: [nano-banana-2, imagen-4]}
            prompt: b
    """)
    plan = build_plan(path)
    assert plan.nodes["shot[model=imagen-4]"].model == "nano-banana-2-lite"
    assert [str(w) for w in plan.warnings] == [
        f"{path}:6:37: warning: step 'shot': matrix.model[1]: imagen-4 now runs "
        "nano-banana-2-lite on Flow (Imagen was retired in July 2026) (write "
        "'nano-banana-2-lite')"
    ]


def test_an_upscale_step_refuses_a_matrix_that_sets_a_field(write_recipe: WriteRecipe) -> None:
    path = write_recipe("""
        version: 1
        name: grid
        api: "2026-07"
        steps:
          hero: {prompt: a}
          big:
            upscale: hero.0
            matrix: {model: [nano-banana-2]}
    """)
    with pytest.raises(RecipeError) as caught:
        build_plan(path)
    assert messages(caught.value) == [
        f"{path}:8:14: step 'big': matrix.model: an upscale step takes no 'model' (it makes one "
        "image from its source: name the variable otherwise)"
    ]


def test_an_upscale_steps_matrix_sets_the_resolution(write_recipe: WriteRecipe) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: grid
        api: "2026-07"
        steps:
          hero: {prompt: a, count: 1}
          big:
            upscale: hero.0
            matrix: {resolution: [2k, 4k]}
    """))
    small, large = plan.nodes["big[resolution=2k]"], plan.nodes["big[resolution=4k]"]
    assert (small.resolution, large.resolution) == ("2k", "4k")
    assert small.provisional_key != large.provisional_key


def test_a_matrix_variable_named_after_a_field_the_step_cannot_send_is_an_error(
    write_recipe: WriteRecipe,
) -> None:
    """A matrix ``resolution`` on a generate step would set nothing: every variant would
    send the same request (one image, answered from the cache for the others)."""
    path = write_recipe("""
        version: 1
        name: grid
        api: "2026-07"
        steps:
          hero:
            prompt: "a lighthouse, {{ resolution }}"
            matrix: {resolution: [2k, 4k]}
          big:
            upscale: "hero[resolution=2k].0"
            matrix: {resolution: [2k, 8k]}
          huge:
            upscale: "hero[resolution=2k].0"
            resolution: 4k
            matrix: {resolution: [4k]}
    """)
    with pytest.raises(RecipeErrors) as caught:
        build_plan(path)
    assert messages(caught.value) == [
        f"{path}:7:14: step 'hero': matrix.resolution: only an upscale step sets 'resolution' "
        "(a generate step sends none: name the variable otherwise)",
        f"{path}:10:31: step 'big': matrix.resolution[1]: '8k' is not one of 2k, 4k",
        f"{path}:14:14: step 'huge': matrix.resolution: the step sets 'resolution' too "
        "(remove one: the matrix sets it per node)",
    ]


def test_top_level_x_keys_hold_anchors_for_steps(write_recipe: WriteRecipe) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: grid
        x-look: &look {model: nano-banana, count: 2, aspectRatio: portrait}
        x-notes: [anything, {goes: here}]
        steps:
          a:
            <<: *look
            prompt: p
          b:
            <<: *look
            count: 1
            prompt: q
    """))
    a, b = plan.nodes["a"], plan.nodes["b"]
    assert (a.model, a.count, a.aspect_ratio) == ("nano-banana", 2, "portrait")
    assert (b.model, b.count) == ("nano-banana", 1)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("count", 4, None), ("count", "4", None), ("count", 0, "must be an integer from 1 to 4"),
        ("count", True, "must be an integer from 1 to 4"), ("seed", "random", None),
        ("seed", -1, "must be an integer >= 0 or 'random'"), ("seed", " 12 ", None),
        ("model", 3, "must be a name, not 3"), ("aspectRatio", "anything", None),
    ],
)
def test_field_problem(key: str, value: object, problem: str | None) -> None:
    assert field_problem(key, value) == problem


def test_field_values_and_templates() -> None:
    assert field_value("seed", "random") is None
    assert field_value("seed", " 12 ") == 12
    assert field_value("count", "3") == 3
    assert field_value("model", " imagen-4 ") == "imagen-4"
    with pytest.raises(ValueError, match="from 1 to 4"):
        field_value("count", "five")
    assert is_field_template("{{ engine }}") and is_field_template("{% if a %}b{% endif %}")
    assert not is_field_template("16:9") and not is_field_template(4)
