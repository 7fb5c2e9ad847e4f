"""Property: whatever a recipe file holds, `validate` exits 0 or 2 with located errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowpipe.cli import cli

ERROR_LINE = re.compile(r"flowpipe: .+:\d+:\d+: \S.*")
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEYS = ["version", "name", "steps", "defaults", "vars", "assets", "accounts", "prompt", "model",
        "aspectRatio", "count", "seed", "style", "context", "matrix", "fallback_model",
        "moderation_retries", "hero", "poster", "k"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["imagen-4", "nano-banana", "hero.0", "hero[k=a].1", "assets.logo",
                     "{{ k }}", "{{ nope }}", "{{ ''.__class__ }}", "random", "square", "a"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)


def base_recipe() -> dict[str, Any]:
    return {
        "version": 1,
        "name": "fuzz",
        "vars": {"k": "a"},
        "steps": {
            "hero": {"prompt": "a {{ k }}", "matrix": {"k": ["a", "b"]}},
            "poster": {"prompt": "b", "context": ["hero[k=a].1"]},
        },
    }


@st.composite
def mutated_recipes(draw: st.DrawFn) -> str:
    """A valid recipe with one value somewhere replaced by something arbitrary."""
    recipe = base_recipe()
    node: Any = recipe
    path = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3))
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = draw(VALUES)
    return yaml.safe_dump(recipe, sort_keys=False)


def check(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 0:
        assert result.stdout.startswith(f"ok: {path} (")
    else:
        lines = result.stderr.splitlines()
        assert lines and all(ERROR_LINE.fullmatch(line) for line in lines), lines


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    check(tmp_path, text)


@FUZZ
@given(value=VALUES)
def test_arbitrary_yaml(tmp_path: Path, value: Any) -> None:
    check(tmp_path, yaml.safe_dump(value))


@FUZZ
@given(text=mutated_recipes())
def test_mutated_valid_recipes(tmp_path: Path, text: str) -> None:
    check(tmp_path, text)


@FUZZ
@given(
    lines=st.lists(
        st.sampled_from(["version: 1", "name: x", "steps:", "  hero:", "    prompt: a",
                         "    count: 2", "  poster:", "    context: [hero.0]", "\t", "- a",
                         "  hero: {prompt: '{{ x'}", "    matrix: {k: []}", "---", "&a", "*a",
                         "    style: hero.9", "vars: {x: 1}", "    seed: -3", "!!set {a}"]),
        max_size=12,
    )
)
def test_recipe_shaped_lines(tmp_path: Path, lines: list[str]) -> None:
    check(tmp_path, "\n".join(lines) + "\n")
