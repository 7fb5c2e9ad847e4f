"""The recipe JSON Schema, read from the repository's ``schemas/`` folder.

``schemas/recipe.schema.json`` is the single source: editors point at it and the
validator uses it. The package reaches it through ``flowpipe/recipe/schemas``, a
symlink to ``../../schemas`` (a test checks that both read the same bytes), so an
editable install and a built wheel (which copies the file) see the same schema.
"""

from __future__ import annotations

import functools
import json
import pkgutil
from typing import TYPE_CHECKING, Any

from flowpipe.recipe.schemacheck import Check, compile_check

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

__all__ = ["SCHEMA_NAME", "recipe_schema", "schema_check", "schema_text", "schema_validator"]

SCHEMA_NAME = "recipe.schema.json"


def schema_text() -> str:
    """The recipe schema exactly as shipped (what ``flowpipe schema`` prints).

    Read with ``pkgutil.get_data`` (the package's own loader, so a zipped install works
    too): ``importlib.resources`` would import tempfile and shutil, a tenth of the start
    of ``flowpipe validate``. Newlines are read as a text file reads them.
    """
    data = pkgutil.get_data("flowpipe.recipe", f"schemas/{SCHEMA_NAME}")
    assert data is not None  # the package is imported, so its loader is known
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


@functools.cache
def recipe_schema() -> dict[str, Any]:
    """The parsed recipe schema (cached: it is read once per process)."""
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


@functools.cache
def schema_validator() -> Draft202012Validator:
    """A validator for the recipe schema, built once (jsonschema is imported here, so
    only a recipe with a problem pays for it).

    The schema's local ``$ref``s are inlined first: it has no recursion, and resolving
    references on every step was half the validation time.
    """
    from jsonschema import Draft202012Validator

    schema = recipe_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(_inlined())


@functools.cache
def schema_check() -> Check | None:
    """The compiled yes/no check of the schema (flowpipe.recipe.schemacheck), built once;
    None if the schema uses a keyword it does not know."""
    return compile_check(_inlined())


@functools.cache
def _inlined() -> dict[str, Any]:
    schema = recipe_schema()
    inlined: dict[str, Any] = _inline_refs(schema, schema["$defs"])
    return inlined


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/NAME", ...}`` replaced by the definition."""
    if isinstance(node, list):
        return [_inline_refs(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    result = {k: v if k == "$defs" else _inline_refs(v, defs) for k, v in node.items()}
    ref = result.pop("$ref", None)
    if ref is None:
        return result
    prefix = "#/$defs/"
    if not isinstance(ref, str) or not ref.startswith(prefix):
        raise ValueError(f"the recipe schema may only use local $defs references, not {ref!r}")
    return {**_inline_refs(defs[ref.removeprefix(prefix)], defs), **result}
