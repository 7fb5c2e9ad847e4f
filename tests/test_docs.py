"""The docs stay true: generated CLI page, documented schema keys, valid snippets, live links.

Each check reads the real files, so a renamed command, a new recipe key, a recipe
snippet that stopped validating or a moved page fails here rather than in a reader's
hands.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
from click.testing import CliRunner

from flowpipe.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / "examples" / "README.md"]
SCHEMA = ROOT / "schemas" / "recipe.schema.json"
NO_VALIDATE = "<!-- no-validate -->"


def load_generator() -> ModuleType:
    """scripts/ is not a package: load gen_cli_docs.py by path."""
    path = ROOT / "scripts" / "gen_cli_docs.py"
    spec = importlib.util.spec_from_file_location("gen_cli_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()
COMMANDS: list[tuple[str, click.Command, click.Context]] = list(GENERATOR.walk(cli, "flowpipe"))


# -- docs/cli.md ----------------------------------------------------------------------


def test_cli_reference_is_generated_from_the_commands() -> None:
    page = DOCS / "cli.md"
    assert page.exists(), "docs/cli.md is missing: run scripts/gen_cli_docs.py"
    assert page.read_text(encoding="utf-8") == GENERATOR.render(), (
        "docs/cli.md is stale: run .venv/bin/python scripts/gen_cli_docs.py"
    )


def test_cli_reference_covers_the_cache_subcommands() -> None:
    names = {full for full, _, _ in COMMANDS}
    assert {"flowpipe cache info", "flowpipe cache verify", "flowpipe cache clear"} <= names


@pytest.mark.parametrize(
    ("name", "command", "ctx"), COMMANDS, ids=[full for full, _, _ in COMMANDS]
)
def test_every_command_has_help_with_an_example(
    name: str, command: click.Command, ctx: click.Context
) -> None:
    text = (command.help or "").strip()
    assert text, f"{name}: empty help"
    assert "Example" in text, f"{name}: its --help shows no example"
    assert f"## {name}\n" in GENERATOR.render()


# -- docs/recipes.md covers the schema -----------------------------------------------


def schema_properties(node: Any) -> Iterator[str]:
    """Every name under any ``properties`` in the schema, $defs included."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            yield from props
        for value in node.values():
            yield from schema_properties(value)
    elif isinstance(node, list):
        for item in node:
            yield from schema_properties(item)


def mentions(text: str, key: str) -> bool:
    """``key`` written as code (`key`, `key: ...`) or as a YAML key in an example."""
    k = re.escape(key)
    pattern = rf"`{k}`|`{k}:|^\s*-?\s*{k}:|[{{,]\s*{k}:"
    return re.search(pattern, text, re.MULTILINE) is not None


def test_every_schema_property_is_documented_in_recipes_md() -> None:
    keys = sorted(set(schema_properties(json.loads(SCHEMA.read_text(encoding="utf-8")))))
    assert len(keys) > 10  # the walk found the step keys, not just the top level
    page = DOCS / "recipes.md"
    assert page.exists(), "docs/recipes.md (the recipe reference) is missing"
    text = page.read_text(encoding="utf-8")
    missing = [key for key in keys if not mentions(text, key)]
    assert not missing, f"docs/recipes.md does not document: {', '.join(missing)}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("use `fallback_model` to ...", True),
        ("  moderation_retries: 2", True),
        ("defaults: {model: imagen-4, count: 4}", True),
        ("the count of images", False),
    ],
    ids=["backticks", "yaml-key", "flow-mapping", "prose-only"],
)
def test_mentions(text: str, expected: bool) -> None:
    key = re.findall(r"fallback_model|moderation_retries|count", text)[0]
    assert mentions(text, key) is expected


# -- recipe snippets validate ----------------------------------------------------------


def recipe_snippets() -> Iterator[tuple[str, str]]:
    """(file:line id, text) of each ```yaml block that looks like a recipe."""
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() in ("```yaml", "```yml"):
                start = i
                body: list[str] = []
                i += 1
                while i < len(lines) and lines[i].strip() != "```":
                    body.append(lines[i])
                    i += 1
                text = "\n".join(body) + "\n"
                prev = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
                looks = re.search(r"^version:", text, re.M) and re.search(r"^steps:", text, re.M)
                if looks and prev != NO_VALIDATE:
                    yield f"{page.relative_to(ROOT)}:{start + 1}", text
            i += 1


SNIPPETS = list(recipe_snippets())


def test_readme_has_recipe_snippets() -> None:
    assert any(name.startswith("README.md:") for name, _ in SNIPPETS)


@pytest.mark.parametrize(("name", "text"), SNIPPETS, ids=[name for name, _ in SNIPPETS])
def test_recipe_snippet_validates(name: str, text: str, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "assets", tmp_path / "assets")
    recipe = tmp_path / "snippet.yaml"
    recipe.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(recipe)])
    assert result.exit_code == 0, f"{name} does not validate:\n{result.output}"


# -- relative links resolve ----------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links() -> Iterator[tuple[str, Path, str]]:
    """(file:line id, page, target) of every relative Markdown link outside code blocks."""
    for page in PAGES:
        in_code = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue
                yield f"{page.relative_to(ROOT)}:{number}:{target}", page, target


LINKS = list(relative_links())


def test_docs_have_links_to_check() -> None:
    assert any(name.startswith("README.md:") for name, _, _ in LINKS)


@pytest.mark.parametrize(("name", "page", "target"), LINKS, ids=[n for n, _, _ in LINKS])
def test_relative_link_points_to_a_file(name: str, page: Path, target: str) -> None:
    path = (page.parent / target.split("#", 1)[0]).resolve()
    assert path.exists(), f"{name}: {path.relative_to(ROOT)} does not exist"
