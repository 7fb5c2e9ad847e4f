"""Lenient reading of the JSON files a run leaves behind: typed values or ``None``.

The format modules (manifest, run log, lock) read files that another version, a crash
or a hand may have written; these helpers turn a field into its type or into
"unknown", and a structure that cannot be used into an ``OutputError`` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowpipe.errors import OutputError

__all__ = [
    "opt_float",
    "opt_int",
    "opt_str",
    "read_json",
    "scalar_text",
    "want_list",
    "want_object",
]


def scalar_text(value: object) -> str:
    """Show a JSON scalar the way a recipe author wrote it (true, not True)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else scalar_text(value)


def opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def opt_float(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def want_object(value: object, where: str, file: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OutputError(f"{file}: {where}: expected an object")
    return value


def want_list(value: object, where: str, file: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OutputError(f"{file}: {where}: expected a list")
    return value


def read_json(path: Path) -> object:
    """The JSON in ``path``; a missing, unreadable or garbled file is an OutputError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputError(f"{path}: not found; run `flowpipe run` to make it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"{path}: cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
