"""No function in the run engine is longer than 60 lines: each does one thing."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "flowpipe" / "engine"
LIMIT = 60


def _functions() -> list[tuple[str, int]]:
    found = []
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = node.end_lineno - first + 1
                found.append((f"{path.name}:{node.lineno} {node.name}", lines))
    return found


def test_the_engine_has_functions_to_measure() -> None:
    names = {name.split(" ", 1)[1] for name, _ in _functions()}
    assert {"run_recipe_async", "_send", "decide", "classify"} <= names


def test_no_engine_function_is_longer_than_60_lines() -> None:
    long = [f"{name}: {lines} lines" for name, lines in _functions() if lines > LIMIT]
    assert long == []
