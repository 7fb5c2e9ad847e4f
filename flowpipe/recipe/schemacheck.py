"""A compiled yes/no check of the recipe schema, so valid recipes skip jsonschema.

jsonschema walks the schema for every value (a validator object per step, a type
lookup per keyword): two thirds of planning a flat 10,000-step recipe, and importing it
is a third of ``flowpipe validate``'s start. Nearly every recipe is valid, and for a
valid one the only answer needed is "no errors". ``compile_check`` turns the schema
(``$ref``s already inlined) into nested closures that answer exactly what
``Draft202012Validator(schema).is_valid`` would, for the values a recipe's YAML can hold;
a value it cannot judge the same way (a date in a ``uniqueItems`` list, say) raises
``Unsure``. The caller runs jsonschema whenever the answer is not a plain True, so its
messages, and their order, stay the only ones users see.

Each keyword mirrors jsonschema 4's own definition (``_keywords.py``, ``_types.py``,
``_utils.equal``); tests compare both on the broken-recipe corpus and on generated
documents.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Check", "Unsure", "compile_check"]

Check = Callable[[Any], bool]

#: Keywords that only describe (jsonschema without a format checker ignores them too).
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default",
     "deprecated", "readOnly", "writeOnly", "errorMessage"}
)
_SCALARS = (str, int, float, bool, type(None))


class Unsure(Exception):  # noqa: N818  not an error: "ask jsonschema"
    """The value is one this check does not judge exactly as jsonschema does."""


def _is_integer(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or (isinstance(x, float) and x.is_integer())


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, numbers.Number)


_TYPES: dict[str, Check] = {
    "array": lambda x: isinstance(x, list),
    "boolean": lambda x: isinstance(x, bool),
    "integer": _is_integer,
    "null": lambda x: x is None,
    "number": _is_number,
    "object": lambda x: isinstance(x, dict),
    "string": lambda x: isinstance(x, str),
}


def _scalar_equal(x: Any, value: Any) -> bool:
    """jsonschema's ``equal(x, value)`` for a scalar ``value`` written in the schema."""
    if x is value:
        return True
    if isinstance(x, str) or isinstance(value, str):
        return bool(x == value)
    if isinstance(x, bool) or isinstance(value, bool):
        return False  # True and False only equal themselves, never 1 or 0
    if isinstance(x, (list, dict)):
        return False
    if not isinstance(x, _SCALARS):
        raise Unsure
    return bool(x == value)


def _unique(items: list[Any]) -> bool:
    """jsonschema's ``uniq``: no two items equal (1 and 1.0 are, True and 1 are not)."""
    if all(type(item) is str for item in items):
        return len(set(items)) == len(items)
    keys: set[Any] = set()
    for item in items:
        if type(item) not in _SCALARS or (type(item) is float and math.isnan(item)):
            raise Unsure
        key = ("bool", item) if type(item) is bool else item
        if key in keys:
            return False
        keys.add(key)
    return True


def compile_check(schema: Any) -> Check | None:
    """A function saying whether a value satisfies ``schema`` (None: a keyword it
    does not know, so only jsonschema can say)."""
    try:
        return _compile(schema)
    except _Unknown:
        return None


class _Unknown(Exception):  # noqa: N818  internal: the schema uses a keyword not handled
    pass


def _always(x: Any) -> bool:
    return True


def _compile(schema: Any) -> Check:
    if schema is True:
        return _always
    if schema is False:
        return lambda x: False
    if not isinstance(schema, dict):
        raise _Unknown
    checks: list[Check] = []
    object_keys = {"properties", "patternProperties", "additionalProperties"}
    for keyword, value in schema.items():
        if keyword in _ANNOTATIONS or keyword in object_keys or keyword in ("then", "else"):
            continue
        make = _KEYWORDS.get(keyword)
        if make is None:
            raise _Unknown
        checks.append(make(value, schema))
    if object_keys & schema.keys():
        checks.append(_members(schema))
    return _all(checks)


def _all(checks: Sequence[Check]) -> Check:
    checks = [c for c in checks if c is not _always]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    first, *rest = checks

    def check(x: Any) -> bool:
        return first(x) and all(c(x) for c in rest)

    return check


def _type(value: Any, schema: Mapping[str, Any]) -> Check:
    names = value if isinstance(value, list) else [value]
    tests = [_TYPES[name] for name in names]
    if len(tests) == 1:
        return tests[0]
    return lambda x: any(t(x) for t in tests)


def _const(value: Any, schema: Mapping[str, Any]) -> Check:
    if not isinstance(value, _SCALARS):
        raise _Unknown
    return lambda x: _scalar_equal(x, value)


def _enum(values: Any, schema: Mapping[str, Any]) -> Check:
    if not all(isinstance(v, _SCALARS) for v in values):
        raise _Unknown
    return lambda x: any(_scalar_equal(x, v) for v in values)


def _string_bound(test: Callable[[str], bool]) -> Check:
    return lambda x: not isinstance(x, str) or test(x)


def _number_bound(test: Callable[[Any], bool]) -> Check:
    return lambda x: not _is_number(x) or test(x)


def _array_bound(test: Callable[[list[Any]], bool]) -> Check:
    return lambda x: not isinstance(x, list) or test(x)


def _object_bound(test: Callable[[dict[Any, Any]], bool]) -> Check:
    return lambda x: not isinstance(x, dict) or test(x)


def _pattern(value: str, schema: Mapping[str, Any]) -> Check:
    search = re.compile(value).search
    return _string_bound(lambda s: search(s) is not None)


def _items(value: Any, schema: Mapping[str, Any]) -> Check:
    each = _compile(value)
    return _array_bound(lambda items: all(each(item) for item in items))


def _property_names(value: Any, schema: Mapping[str, Any]) -> Check:
    each = _compile(value)
    return _object_bound(lambda mapping: all(each(key) for key in mapping))


def _if(value: Any, schema: Mapping[str, Any]) -> Check:
    condition = _compile(value)
    then = _compile(schema.get("then", True))  # both read here, skipped as keywords
    otherwise = _compile(schema.get("else", True))
    return lambda x: then(x) if condition(x) else otherwise(x)


def _not(value: Any, schema: Mapping[str, Any]) -> Check:
    inner = _compile(value)
    return lambda x: not inner(x)


def _any_of(value: Any, schema: Mapping[str, Any]) -> Check:
    options = [_compile(v) for v in value]
    return lambda x: any(option(x) for option in options)


def _members(schema: Mapping[str, Any]) -> Check:
    """``properties``, ``patternProperties`` and ``additionalProperties`` in one pass over
    the keys: a key is checked by its property and by every pattern it matches; a key of
    neither is extra."""
    properties = {k: _compile(v) for k, v in schema.get("properties", {}).items()}
    pattern_schemas = schema.get("patternProperties", {})
    patterns = [(re.compile(p).search, check) for p, v in pattern_schemas.items()
                if (check := _compile(v)) is not _always]
    joined = "|".join(pattern_schemas)  # jsonschema finds extras with one joined search
    matches_any = re.compile(joined).search if joined else None
    extra = _compile(schema.get("additionalProperties", True))

    def check(mapping: Any) -> bool:
        if not isinstance(mapping, dict):
            return True
        for key, value in mapping.items():
            known = properties.get(key)
            if known is not None and not known(value):
                return False
            if pattern_schemas and not isinstance(key, str):
                raise Unsure  # jsonschema would fail searching it; YAML keys are strings
            for search, each in patterns:
                if search(key) and not each(value):
                    return False
            if known is None and extra is not _always and not (
                matches_any is not None and matches_any(key)
            ) and not extra(value):
                return False
        return True

    return check


_KEYWORDS: dict[str, Callable[[Any, Mapping[str, Any]], Check]] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "minLength": lambda n, _: _string_bound(lambda s: len(s) >= n),
    "maxLength": lambda n, _: _string_bound(lambda s: len(s) <= n),
    "pattern": _pattern,
    "minimum": lambda n, _: _number_bound(lambda x: not x < n),
    "maximum": lambda n, _: _number_bound(lambda x: not x > n),
    "minItems": lambda n, _: _array_bound(lambda items: len(items) >= n),
    "maxItems": lambda n, _: _array_bound(lambda items: len(items) <= n),
    "uniqueItems": lambda on, _: _array_bound(_unique) if on else _always,
    "items": _items,
    "minProperties": lambda n, _: _object_bound(lambda mapping: len(mapping) >= n),
    "required": lambda names, _: _object_bound(lambda mapping: all(n in mapping for n in names)),
    "propertyNames": _property_names,
    "if": _if,
    "not": _not,
    "anyOf": _any_of,
}
