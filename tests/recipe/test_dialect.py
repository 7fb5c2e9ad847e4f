"""Per-dialect recipe checks: what each `api:` accepts, refuses and warns about."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowpipe.cli import cli
from flowpipe.dialects import DIALECTS
from flowpipe.errors import RecipeError, RecipeErrors
from flowpipe.planner import build_plan
from flowpipe.recipe.dialect import value_problem
from flowpipe.recipe.rules import default_fallback, model_problem, reference_hint

NEW = DIALECTS["2026-07"]
OLD = DIALECTS["2025-11"]

RECIPE_2026 = """\
version: 1
name: new
api: "2026-07"
defaults: {model: imagen-4, captchaRetry: 4}
steps:
  hero:
    prompt: a
    aspectRatio: landscape
  wide:
    prompt: b
    model: nano-banana
    aspectRatio: "4:3"
    context: [hero.0, hero.1, hero.2, hero.3, hero.0, hero.1, hero.2, hero.3, hero.0, hero.1]
  same:
    prompt: c
    aspectRatio: auto
    context: [hero.0]
    captchaRetry: 10
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    try:
        build_plan(path)
    except RecipeErrors as exc:
        return [str(e) for e in exc.errors]
    except RecipeError as exc:
        return [str(exc)]
    return []


def test_a_2026_recipe_plans_with_canonical_names_and_warnings(tmp_path: Path) -> None:
    plan = build_plan(write(tmp_path, RECIPE_2026))
    assert plan.dialect == "2026-07"
    hero, wide, same = plan.nodes["hero"], plan.nodes["wide"], plan.nodes["same"]
    assert (hero.model, hero.aspect_ratio) == ("nano-banana-2-lite", "16:9")
    assert (wide.model, len(wide.context)) == ("nano-banana-2", 10)
    assert same.aspect_ratio == "auto"
    assert (hero.captcha_retry, same.captcha_retry) == (4, 10)
    assert {n.dialect for n in plan.nodes.values()} == {"2026-07"}
    texts = [str(w) for w in plan.warnings]
    assert texts == [
        f"{tmp_path / 'recipe.yaml'}:4:19: warning: defaults: model: imagen-4 now runs "
        "nano-banana-2-lite on Flow (Imagen was retired in July 2026) "
        "(write 'nano-banana-2-lite')",
        f"{tmp_path / 'recipe.yaml'}:8:18: warning: step 'hero': aspectRatio: 'landscape' is "
        "the 2025-11 name: flowpipe sends '16:9' (write '16:9')",
        f"{tmp_path / 'recipe.yaml'}:11:12: warning: step 'wide': model: nano-banana now runs "
        "nano-banana-2 on Flow (the old name is an alias) (write 'nano-banana-2')",
    ]


def test_validate_prints_warnings_on_stderr_and_still_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path, RECIPE_2026)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: {path} (3 nodes)\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"flowpipe: {path}:") and ": warning: " in line for line in lines)
    assert "imagen-4 now runs nano-banana-2-lite on Flow (Imagen was retired in July 2026)" in (
        lines[0]
    )


def test_plan_prints_the_same_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, RECIPE_2026)
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(": warning: ") == 3
    assert "api 2026-07" in result.stdout.splitlines()[0]


def test_a_2025_recipe_has_no_warnings_and_speaks_2025(tmp_path: Path) -> None:
    plan = build_plan(write(tmp_path, "version: 1\nname: x\nsteps:\n  a: {prompt: p}\n"))
    assert plan.dialect == "2025-11" and plan.warnings == ()
    node = plan.nodes["a"]
    assert (node.dialect, node.kind, node.model, node.aspect_ratio) == (
        "2025-11", "generate", "imagen-4", "landscape"
    )


def test_unquoted_api_value_is_read_as_text(tmp_path: Path) -> None:
    text = "version: 1\nname: x\napi: 2026-07\nsteps:\n  a: {prompt: p}\n"
    assert build_plan(write(tmp_path, text)).nodes["a"].aspect_ratio == "16:9"


def test_a_matrix_step_reports_each_problem_once(tmp_path: Path) -> None:
    text = (
        'version: 1\nname: x\napi: "2026-07"\nsteps:\n  a:\n    prompt: "{{ v }}"\n'
        "    matrix: {v: [1, 2, 3]}\n    aspectRatio: auto\n"
    )
    errors = errors_of(write(tmp_path, text))
    assert len(errors) == 1 and "'auto' takes the shape of the first reference" in errors[0]


def test_all_problems_of_a_dialect_are_reported_at_once(tmp_path: Path) -> None:
    text = (
        "version: 1\nname: x\ndefaults: {model: nano-banana-2}\nsteps:\n"
        '  a: {prompt: p, aspectRatio: "9:16", captchaRetry: 2}\n'
        "  b: {upscale: a.0}\n"
    )
    errors = errors_of(write(tmp_path, text))
    assert len(errors) == 4
    assert all("need" in e and "`api: 2026-07`" in e for e in errors)


@pytest.mark.parametrize(
    ("spoken", "key", "value", "problem"),
    [
        (OLD, "aspectRatio", "16:9", ("'16:9' is not one of landscape, portrait, square",
                                      "write 'landscape': 16:9 is 'landscape' in api 2025-11, "
                                      "and 16:9 needs `api: 2026-07`")),
        (NEW, "aspectRatio", "landscape", None),
        (NEW, "aspectRatio", "square", ("'square' is not one of 16:9, 4:3, 1:1, 3:4, 9:16, "
                                        "auto", "write '1:1'; square needs `api: 2025-11`")),
        (NEW, "model", "imagen-4", None),
        (NEW, "model", "nano-banana-2-pro", ("'nano-banana-2-pro' is not one of "
                                             "nano-banana-2-lite, nano-banana-2, nano-banana-pro, "
                                             "imagen-4, nano-banana (did you mean "
                                             "'nano-banana-pro'?)", None)),
        (OLD, "fallback_model", "none", None),
        (NEW, "resolution", "4k", None),
        (OLD, "resolution", "2k", ("'2k' is not one of ", None)),
    ],
    ids=["old-16:9", "new-landscape", "new-square", "new-alias", "new-typo", "old-none",
         "new-4k", "old-resolution"],
)
def test_value_problem(
    spoken: object, key: str, value: str, problem: tuple[str, str | None] | None
) -> None:
    assert value_problem(spoken, key, value) == problem  # type: ignore[arg-type]


def test_too_many_references_names_the_models_limit() -> None:
    small = dataclasses.replace(
        NEW, models={**NEW.models, "nano-banana-2-lite": dataclasses.replace(
            NEW.models["nano-banana-2-lite"], max_context=3)},
    )
    assert model_problem("nano-banana-2-lite", has_style=False, context_count=4, spoken=small) == (
        "nano-banana-2-lite takes at most 3 references, this step has 4"
    )
    assert reference_hint("nano-banana-2-lite", small) == (
        "use at most 3 references, or 'model: nano-banana-2' for 10"
    )
    assert model_problem("imagen-4", has_style=False, context_count=4) == (
        "imagen-4 takes at most 3 context references, this step has 4"
    )


def test_fallbacks_of_2026_follow_the_table() -> None:
    assert default_fallback(None, "nano-banana-pro", has_style=False, context_count=2,
                            spoken=NEW) == ("nano-banana-2", None)
    assert default_fallback("imagen-4", "nano-banana-2", has_style=False, context_count=2,
                            spoken=NEW) == ("nano-banana-2-lite", None)
    assert default_fallback("nano-banana", "nano-banana-2", has_style=False, context_count=2,
                            spoken=NEW) == (None, None)  # an alias of its own model: no switch
