"""Check a loaded recipe against ``schemas/recipe.schema.json``, with positions.

The whole raw document is validated once (not per node), first by a compiled check
(flowpipe.recipe.schemacheck) that only says yes or no; jsonschema, imported then, runs
only on a document that check does not pass, and gives every message. Its errors carry
a path into the data; the Document maps that path back to ``line:col``, and the error is
reworded for a person: unknown keys get a did-you-mean, type errors say what was
expected and what was found, and a schema's own ``errorMessage`` (also shown by
editors) is used where it has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from flowpipe.dialects import DEFAULT_DIALECT, DIALECTS
from flowpipe.errors import SchemaError
from flowpipe.recipe.load import Document, YamlPath
from flowpipe.recipe.messages import ErrorList, did_you_mean, one_line, quote, type_name
from flowpipe.recipe.rules import too_many_references
from flowpipe.recipe.schema import schema_check, schema_validator
from flowpipe.recipe.schemacheck import Unsure

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

__all__ = ["describe_path", "validate_document"]

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def validate_document(doc: Document) -> None:
    """Raise every schema violation of ``doc`` at once (SchemaError or RecipeErrors)."""
    errors = ErrorList()
    if not isinstance(doc.data, dict):
        errors.add(
            SchemaError(
                f"a recipe is a mapping with 'version', 'name' and 'steps', not "
                f"{type_name(doc.data)}",
                doc.at(()),
                hint="start from examples/campaign.yaml",
            )
        )
        errors.raise_if_any()
    if _surely_valid(doc.data):
        return
    for error in schema_validator().iter_errors(doc.data):
        for problem in _explain(error, doc):
            errors.add(problem)
    errors.raise_if_any()


def _surely_valid(data: Any) -> bool:
    """The compiled check's plain yes; anything else asks jsonschema for the errors."""
    check = schema_check()
    if check is None:
        return False
    try:
        return check(data)
    except Unsure:
        return False


def describe_path(path: Sequence[Any]) -> str:
    """``step 'hero': matrix.angle[0]`` for ``("steps", "hero", "matrix", "angle", 0)``."""
    if not path:
        return "recipe"
    if path[0] == "steps" and len(path) >= 2:
        head, rest = f"step {quote(path[1])}", path[2:]
    else:
        head, rest = str(path[0]), path[1:]
    if not rest:
        return head
    tail = ""
    for part in rest:
        tail += f"[{part}]" if isinstance(part, int) else (f".{part}" if tail else str(part))
    return f"{head}: {one_line(tail, 120)}"


def _explain(error: ValidationError, doc: Document) -> Iterable[SchemaError]:
    path: YamlPath = tuple(error.absolute_path)
    where = describe_path(path)
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.absolute_schema_path:
        name = error.instance
        message = schema.get("errorMessage") or one_line(error.message)
        yield SchemaError(f"{where}: {quote(name)}: {message}", doc.key_at((*path, str(name))))
        return
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                near = did_you_mean(key, allowed, listing=8)
                yield SchemaError(
                    f"{where}: unknown key {quote(key)}{near}",
                    doc.key_at((*path, key)),
                    hint=None if "did you mean" in near else "remove it or fix its spelling",
                )
        return
    if keyword == "required" and isinstance(error.instance, dict):
        for key in error.validator_value:  # type: ignore[union-attr]
            if key not in error.instance:
                yield SchemaError(
                    f"{where}: missing key {quote(key)}",
                    doc.key_at(path),
                    hint=_REQUIRED_HINTS.get(str(key)),
                )
        return
    if keyword == "maxItems" and path[:1] == ("steps",) and path[2:] == ("context",) \
            and isinstance(error.instance, list):
        yield _too_many_references(doc, path, len(error.instance))
        return
    message = schema.get("errorMessage")
    if message:
        yield SchemaError(f"{where}: {message} (got {quote(error.instance)})", doc.at(path))
    elif keyword == "type":
        value = error.validator_value
        wanted = [str(w) for w in value] if isinstance(value, list) else [str(value)]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        got = type_name(error.instance)
        yield SchemaError(f"{where}: expected {words}, got {got}", doc.at(path))
    elif keyword == "enum":
        options = [str(o) for o in error.validator_value]  # type: ignore[union-attr]
        hint = did_you_mean(str(error.instance), options)
        yield SchemaError(
            f"{where}: {quote(error.instance)} is not one of {', '.join(options)}{hint}",
            doc.at(path),
        )
    elif keyword == "minProperties" and path == ("steps",):
        yield SchemaError(f"{where}: the recipe has no steps", doc.at(path), hint="add a step")
    else:
        yield SchemaError(f"{where}: {one_line(error.message, 200)}", doc.at(path))


def _too_many_references(doc: Document, path: YamlPath, count: int) -> SchemaError:
    """More references than any model takes: say which model the step has, and its limit."""
    data: dict[str, Any] = doc.data
    spoken = DIALECTS.get(str(data.get("api")), DIALECTS[DEFAULT_DIALECT])
    step = data["steps"][path[1]]
    defaults = data.get("defaults")
    written = defaults.get("model") if isinstance(defaults, dict) else None
    model = step.get("model", written) if isinstance(step, dict) else None
    found = too_many_references(spoken, model, count)
    assert found is not None  # the schema's bound is every model's limit or more
    message, hint = found
    return SchemaError(f"{describe_path(path[:2])}: {message}", doc.at(path), hint=hint)


_REQUIRED_HINTS = {
    "version": "add 'version: 1' at the top",
    "name": "add 'name: my-recipe'; it seeds the derived seeds",
    "steps": "add a 'steps:' mapping",
    "prompt": "every step needs a prompt",
}

