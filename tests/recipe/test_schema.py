from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from click.testing import CliRunner
from jsonschema import Draft202012Validator

from flowpipe.cli import cli
from flowpipe.recipe.schema import SCHEMA_NAME, recipe_schema, schema_text, schema_validator

REPO = Path(__file__).resolve().parents[2]


def test_package_reads_the_repository_schema_byte_for_byte() -> None:
    """schemas/ is the single source: the copy the package reads may never drift."""
    packaged = resources.files("flowpipe.recipe").joinpath("schemas").joinpath(SCHEMA_NAME)
    assert packaged.read_bytes() == (REPO / "schemas" / SCHEMA_NAME).read_bytes()
    assert schema_text() == (REPO / "schemas" / SCHEMA_NAME).read_text("utf-8")


def test_schema_is_valid_draft_2020_12_with_the_documented_defs() -> None:
    schema = recipe_schema()
    Draft202012Validator.check_schema(schema)
    assert {"defaults", "step", "reference"} <= set(schema["$defs"])


def test_inlined_validator_accepts_and_rejects_like_the_schema() -> None:
    plain = Draft202012Validator(recipe_schema())
    samples = [
        {"version": 1, "name": "x", "steps": {"a": {"prompt": "p", "seed": "random"}}},
        {"version": 1, "name": "x", "steps": {"a": {"prompt": "p", "seed": -1}}},
        {"version": 1, "name": "x", "steps": {"assets": {"prompt": "p"}}},
        {"version": 1, "name": "x", "defaults": {"count": 5}, "steps": {"a": {"prompt": "p"}}},
    ]
    for sample in samples:
        assert schema_validator().is_valid(sample) == plain.is_valid(sample)


def test_schema_command_prints_the_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == schema_text()
    assert json.loads(result.stdout)["title"] == "flowpipe recipe"


def test_example_recipe_points_editors_at_the_schema() -> None:
    first = (REPO / "examples" / "campaign.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/recipe.schema.json"
    assert (REPO / "examples" / "../schemas/recipe.schema.json").is_file()


def test_docs_name_every_key_of_the_schema() -> None:
    docs = (REPO / "docs" / "recipes.md").read_text(encoding="utf-8")
    schema = recipe_schema()
    keys = set(schema["properties"]) | set(schema["$defs"]["step"]["properties"])
    keys |= set(schema["$defs"]["defaults"]["properties"])
    missing = sorted(k for k in keys if f"`{k}`" not in docs)
    assert not missing
