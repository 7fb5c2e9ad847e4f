"""The recipe language: load (YAML with positions), validate, render, expand.

``flowpipe.planner.build_plan`` strings these together; they are public so tools (an
editor plugin, a linter) can use a stage on its own.
"""

from __future__ import annotations

from flowpipe.recipe.assets import MAX_ASSET_BYTES, Asset, load_assets
from flowpipe.recipe.expand import Expansion, RawNode, RawRef, StepInfo, derive_seed, expand
from flowpipe.recipe.load import Document, load_document, load_text
from flowpipe.recipe.overrides import parse_var_overrides
from flowpipe.recipe.render import Renderer
from flowpipe.recipe.schema import recipe_schema, schema_text, schema_validator
from flowpipe.recipe.validate import validate_document

__all__ = [
    "MAX_ASSET_BYTES",
    "Asset",
    "Document",
    "Expansion",
    "RawNode",
    "RawRef",
    "Renderer",
    "StepInfo",
    "derive_seed",
    "expand",
    "load_assets",
    "load_document",
    "load_text",
    "parse_var_overrides",
    "recipe_schema",
    "schema_text",
    "schema_validator",
    "validate_document",
]
