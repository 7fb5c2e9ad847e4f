"""``--var NAME=VALUE`` options: the value is read as a YAML scalar.

``3`` is an int, ``1.5`` a float, ``true`` a boolean, anything else text. A value that
YAML would read as a list or mapping (``a: b``) stays text, and an empty value is the
empty string, so a shell-quoted prompt fragment always arrives as written.
"""

from __future__ import annotations

import re

import yaml

from flowpipe.errors import UsageError

__all__ = ["parse_var_overrides"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_var_overrides(values: tuple[str, ...]) -> dict[str, object]:
    """Turn ``("k=v", ...)`` into ``{"k": v}``; a later ``k`` wins. Bad form: UsageError."""
    result: dict[str, object] = {}
    for item in values:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not _NAME.fullmatch(name):
            raise UsageError(
                f"--var {item!r}: expected NAME=VALUE",
                hint="NAME is letters, digits and '_'; for example --var product=boot",
            )
        result[name] = _scalar(text)
    return result


def _scalar(text: str) -> object:
    if not text.strip():
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None and text.strip() not in ("null", "~", "Null", "NULL"):
        return text
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return text
