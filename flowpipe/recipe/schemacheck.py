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


class Unsure(Exception):
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


class _Unknown(Exception):
    """The schema uses a keyword this module does not handle."""


def _always(x: Any) -> bool:
    return True


def _never(x: Any) -> bool:
    return False


_MEMBERS = frozenset({"properties", "patternProperties", "additionalProperties"})
_SKIPPED = _ANNOTATIONS | _MEMBERS | {"then", "else"}  # read by _members and _if

#: Which values a keyword applies to (jsonschema skips every other kind of value).
_KINDS: dict[str, Check] = {kind: _TYPES[kind] for kind in ("string", "number", "array", "object")}


def _compile(schema: Any) -> Check:
    """One function per schema: its type first, then the keywords of each kind of value
    together behind one test of that kind (fewer calls per value than one per keyword)."""
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, dict):
        raise _Unknown
    checks: list[Check] = []
    kinds: dict[str, list[Check]] = {kind: [] for kind in _KINDS}
    for keyword, value in schema.items():
        if keyword in _SKIPPED:
            continue
        if keyword in _BOUNDS:
            kind, make_bound = _BOUNDS[keyword]
            test = make_bound(value)
            if test is not _always:
                kinds[kind].append(test)
            continue
        make = _KEYWORDS.get(keyword)
        if make is None:
            raise _Unknown
        checks.append(make(value, schema))
    if _MEMBERS & schema.keys():
        kinds["object"].append(_members(schema))
    for kind, tests in kinds.items():
        if tests:
            checks.append(_when(_KINDS[kind], _all(tests)))
    return _all(checks)


def _when(applies: Check, test: Check) -> Check:
    return lambda x: not applies(x) or test(x)


def _all(checks: Sequence[Check]) -> Check:
    checks = [c for c in checks if c is not _always]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda x: first(x) and second(x)

    def check(x: Any) -> bool:
        for each in checks:  # noqa: SIM110  a loop: all() over a generator is slower here
            if not each(x):
                return False
        return True

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


def _pattern(value: str) -> Check:
    search = re.compile(value).search
    return lambda s: search(s) is not None


def _items(value: Any) -> Check:
    each = _compile(value)
    if each is _always:
        return _always
    return lambda items: all(each(item) for item in items)


def _property_names(value: Any) -> Check:
    each = _compile(value)
    if each is _always:
        return _always
    return lambda mapping: all(each(key) for key in mapping)


def _if(value: Any, schema: Mapping[str, Any]) -> Check:
    condition = _compile(value)
    then = _compile(schema.get("then", True))
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
    the keys of a mapping: a key is checked by its property and by every pattern it
    matches; a key of neither is extra."""
    properties = {k: _compile(v) for k, v in schema.get("properties", {}).items()}
    pattern_schemas = schema.get("patternProperties", {})
    patterns = [(re.compile(p).search, test) for p, v in pattern_schemas.items()
                if (test := _compile(v)) is not _always]
    joined = "|".join(pattern_schemas)  # jsonschema finds extras with one joined search
    matches_any = re.compile(joined).search if joined else None
    extra = _compile(schema.get("additionalProperties", True))

    def check(mapping: dict[Any, Any]) -> bool:
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


#: Keywords that apply to one kind of value: that kind and a test of such a value.
_BOUNDS: dict[str, tuple[str, Callable[[Any], Check]]] = {
    "minLength": ("string", lambda n: lambda s: len(s) >= n),
    "maxLength": ("string", lambda n: lambda s: len(s) <= n),
    "pattern": ("string", _pattern),
    "minimum": ("number", lambda n: lambda x: not x < n),
    "maximum": ("number", lambda n: lambda x: not x > n),
    "minItems": ("array", lambda n: lambda items: len(items) >= n),
    "maxItems": ("array", lambda n: lambda items: len(items) <= n),
    "uniqueItems": ("array", lambda on: _unique if on else _always),
    "items": ("array", _items),
    "minProperties": ("object", lambda n: lambda mapping: len(mapping) >= n),
    "required": ("object", lambda names: lambda mapping: all(n in mapping for n in names)),
    "propertyNames": ("object", _property_names),
}
_KEYWORDS: dict[str, Callable[[Any, Mapping[str, Any]], Check]] = {
    "type": _type,
    "const": _const,
    "enum": _enum,
    "if": _if,
    "not": _not,
    "anyOf": _any_of,
}
