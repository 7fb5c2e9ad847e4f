from __future__ import annotations

import hashlib
import importlib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from flowpipe.errors import PlanError, RecipeError, SchemaError
from flowpipe.planner import build_plan
from flowpipe.recipe.expand import derive_seed
from flowpipe.recipe.rules import MAX_PROMPT_CHARS

from .conftest import WriteRecipe

expand_module = importlib.import_module("flowpipe.recipe.expand")  # the package re-exports a
# function of the same name, so ``from flowpipe.recipe import expand`` is not the module


def test_matrix_is_a_cartesian_product_in_written_order(write_recipe: WriteRecipe) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: m
        steps:
          s:
            matrix: {b: [x, y], a: [1, 2, true]}
            prompt: "{{ a }} {{ b }}"
    """))
    assert list(plan.nodes) == [
        "s[b=x,a=1]", "s[b=x,a=2]", "s[b=x,a=true]",
        "s[b=y,a=1]", "s[b=y,a=2]", "s[b=y,a=true]",
    ]
    node = plan.nodes["s[b=y,a=true]"]
    assert node.variant == (("b", "y"), ("a", "true"))
    assert node.prompt == "True y"  # the value itself reaches Jinja; the id shows YAML's spelling
    assert node.out_dir == "s/b=y,a=true"


def test_step_variables_and_var_overrides(write_recipe: WriteRecipe) -> None:
    path = write_recipe("""
        version: 1
        name: v
        vars: {product: shoe, angle: top}
        steps:
          s:
            matrix: {angle: [side]}
            prompt: "{{ product }}/{{ angle }}/{{ step.id }}/{{ step.node }}/{{
              step.variant.angle }}"
    """)
    assert build_plan(path).nodes["s[angle=side]"].prompt == "shoe/side/s/s[angle=side]/side"
    plan = build_plan(path, overrides={"product": "boot"})
    assert plan.nodes["s[angle=side]"].prompt.startswith("boot/side/")


def test_defaults_are_inherited_and_overridden(write_recipe: WriteRecipe) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: d
        defaults: {model: nano-banana, aspectRatio: square, count: 2, seed: random,
                   fallback_model: none, moderation_retries: 5}
        steps:
          a: {prompt: x}
          b: {prompt: y, count: 1, seed: 7, aspectRatio: portrait, model: imagen-4,
              moderation_retries: 0, fallback_model: nano-banana}
    """))
    a, b = plan.nodes["a"], plan.nodes["b"]
    assert (a.model, a.aspect_ratio, a.count, a.seed) == ("nano-banana", "square", 2, None)
    assert (a.fallback_model, a.moderation_retries) == (None, 5)
    assert (b.model, b.aspect_ratio, b.count, b.seed) == ("imagen-4", "portrait", 1, 7)
    assert (b.fallback_model, b.moderation_retries) == ("nano-banana", 0)


def test_builtin_defaults(write_recipe: WriteRecipe) -> None:
    node = build_plan(write_recipe("version: 1\nname: n\nsteps:\n  a: {prompt: x}\n")).nodes["a"]
    assert (node.model, node.aspect_ratio, node.count) == ("imagen-4", "landscape", 4)
    assert (node.fallback_model, node.moderation_retries) == ("nano-banana", 2)


def test_derived_seed_formula_and_range() -> None:
    digest = hashlib.sha256(b"trail\ncloseup[angle=side]").digest()
    assert derive_seed("trail", "closeup[angle=side]") == int.from_bytes(digest[:4]) & 0x7FFFFFFF
    seeds = {derive_seed("r", f"s[i={i}]") for i in range(2000)}
    assert len(seeds) > 1990
    assert all(0 <= s <= 2**31 - 1 for s in seeds)


def test_derived_seeds_depend_on_name_and_node_only(write_recipe: WriteRecipe) -> None:
    text = """
        version: 1
        name: {name}
        steps:
          {extra}
          s: {{matrix: {{k: [a, b]}}, prompt: "{{{{ k }}}}"}}
    """
    one = build_plan(write_recipe(text.format(name="r1", extra="")))
    two = build_plan(write_recipe(text.format(name="r1", extra="x: {prompt: other}")))
    three = build_plan(write_recipe(text.format(name="r2", extra="")))
    for node_id in ("s[k=a]", "s[k=b]"):
        assert one.nodes[node_id].seed == derive_seed("r1", node_id)
        assert two.nodes[node_id].seed == one.nodes[node_id].seed
        assert three.nodes[node_id].seed == derive_seed("r2", node_id) != one.nodes[node_id].seed


@pytest.mark.parametrize(
    ("value", "node_id", "folder"),
    [
        ("../../etc", "s[v=../../etc]", "v=etc"),
        ("/abs/path", "s[v=/abs/path]", "v=abs-path"),
        ("a\\b", "s[v=a\\b]", "v=a-b"),
        ("golden hour, soft", "s[v=golden hour, soft]", "v=golden-hour-soft"),
        ("..", "s[v=..]", "v=_"),
        ("bell\x07", "s[v=bell\\x07]", "v=bell"),
        ("Zoë", "s[v=Zoë]", "v=Zo"),
        ("x" * 200, f"s[v={'x' * 200}]", f"v={'x' * 60}"),
    ],
    ids=["dotdot", "absolute", "backslash", "spaces-commas", "only-dots", "control-char",
         "non-ascii", "long"],
)
def test_matrix_values_cannot_escape_the_output_folder(
    write_recipe: WriteRecipe, value: str, node_id: str, folder: str
) -> None:
    quoted = value.replace("\\", "\\\\").replace("\x07", "\\a")
    plan = build_plan(write_recipe(f"""
        version: 1
        name: slug
        steps:
          s: {{matrix: {{v: ["{quoted}"]}}, prompt: x}}
    """))
    (node,) = plan.nodes.values()
    assert node.id == node_id
    assert node.out_dir == f"s/{folder}"
    path = PurePosixPath(node.out_dir)
    assert not path.is_absolute() and ".." not in path.parts
    assert len(path.parts) == 2


def test_colliding_slugs_get_a_hash_suffix(write_recipe: WriteRecipe) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: c
        steps:
          s: {matrix: {v: ["a b", "a/b", "A-B", "c"]}, prompt: x}
    """))
    dirs = [PurePosixPath(n.out_dir).name for n in plan.nodes.values()]
    assert len(set(d.casefold() for d in dirs)) == 4
    assert dirs[3] == "v=c"
    assert all(d.startswith(("v=a-b-", "v=A-B-")) and len(d) == len("v=a-b-") + 8 for d in dirs[:3])


def test_one_template_error_per_step_not_per_variant(write_recipe: WriteRecipe) -> None:
    path = write_recipe("""
        version: 1
        name: e
        steps:
          s: {matrix: {k: [1, 2, 3, 4]}, prompt: "{{ nope }}"}
    """)
    with pytest.raises(RecipeError) as info:  # exactly one error, so not RecipeErrors
        build_plan(path)
    assert "step 's[k=1]': prompt: variable 'nope' is undefined" in str(info.value)


def test_references_render_with_the_nodes_own_values(write_recipe: WriteRecipe) -> None:
    plan = build_plan(write_recipe("""
        version: 1
        name: r
        steps:
          a: {matrix: {k: [x, y]}, prompt: "{{ k }}", count: 2}
          b:
            matrix: {k: [x, y]}
            prompt: "{{ k }}"
            model: nano-banana
            context: ["a[k={{ k }}].1", " a[k=x].0 "]
    """))
    refs = plan.nodes["b[k=y]"].context
    assert [(r.node, r.index, r.text) for r in refs] == [
        ("a[k=y]", 1, "a[k=y].1"), ("a[k=x]", 0, "a[k=x].0"),
    ]
    assert plan.nodes["b[k=y]"].deps == ("a[k=y]", "a[k=x]")


def test_node_count_is_checked_before_any_step_is_expanded(
    write_recipe: WriteRecipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the cap: refused at the step that crosses it, and no step is expanded first."""
    monkeypatch.setattr(expand_module, "MAX_NODES", 1_000)
    steps = "".join(
        f"  s{i}:\n    matrix: {{a: [{', '.join(map(str, range(10)))}], b: [0, 1, 2, 3, 4, 5, 6, 7,"
        f" 8, 9]}}\n    prompt: \"{{{{ a }}}} {{{{ b }}}}\"\n"
        for i in range(20)
    )  # 20 steps of 100 nodes: s10 takes the total past 1,000
    path = write_recipe("version: 1\nname: big\nsteps:\n" + steps)
    expanded: list[str] = []
    real = expand_module._StepExpander.expand

    def spy(self: Any, matrix: Any) -> Any:
        expanded.append(self.step_id)
        return real(self, matrix)

    monkeypatch.setattr(expand_module._StepExpander, "expand", spy)
    with pytest.raises(PlanError) as caught:
        build_plan(path)
    assert expanded == []
    assert str(caught.value).startswith(
        f"{path}:35:13: step 's10': the recipe expands to more than 1,000 nodes"
    ), caught.value


def test_the_node_cap_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert f"at most {expand_module.MAX_NODES:,} nodes" in text


def test_a_prompt_over_the_length_cap_is_refused_where_it_is_written(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe(f"""
        version: 1
        name: long
        vars: {{big: "{'y' * MAX_PROMPT_CHARS}"}}
        steps:
          ok: {{prompt: "{{{{ big }}}}"}}
          long:
            prompt: "{{{{ big }}}}!"
    """)
    with pytest.raises(PlanError) as caught:
        build_plan(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:7:13: step 'long': the prompt is {MAX_PROMPT_CHARS + 1:,} "
                           f"characters; the limit is {MAX_PROMPT_CHARS:,}"), text


def test_a_prompt_template_over_the_length_cap_is_a_schema_error(
    write_recipe: WriteRecipe,
) -> None:
    path = write_recipe(f"""
        version: 1
        name: long
        steps:
          long: {{prompt: "{'y' * (MAX_PROMPT_CHARS + 1)}"}}
    """)
    with pytest.raises(SchemaError) as caught:
        build_plan(path)
    assert str(caught.value).startswith(f"{path}:4:18: step 'long': prompt: must be"), caught.value
    assert f"{MAX_PROMPT_CHARS:,}" in str(caught.value)


def test_schema_and_code_agree_on_the_prompt_cap() -> None:
    from flowpipe.recipe.schema import recipe_schema

    prompt = recipe_schema()["$defs"]["step"]["properties"]["prompt"]
    assert prompt["maxLength"] == MAX_PROMPT_CHARS


def test_matrix_folders_stay_short_enough_for_every_file_system(
    write_recipe: WriteRecipe,
) -> None:
    """Five long keys and values would make a 600-character folder: cut, with a hash."""
    keys = [f"{k * 60}" for k in "abcde"]
    matrix = ", ".join(f"{k}: ['{'v' * 60}', w]" for k in keys)
    plan = build_plan(write_recipe(f"""
        version: 1
        name: long
        steps:
          s: {{matrix: {{{matrix}}}, prompt: x}}
    """))
    folders = [PurePosixPath(n.out_dir).name for n in plan.nodes.values()]
    assert len(folders) == 32 and len(set(folders)) == 32
    assert all(len(f) <= 120 for f in folders), max(map(len, folders))
    assert all(not f.endswith((".", " ")) for f in folders)
