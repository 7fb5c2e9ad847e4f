"""docs/python.md stays true: every Python snippet on the page runs, in order.

The snippets share one namespace (a reader types them into one session), run in a
folder holding a copy of examples/ with a private cache, on the embedded simulator.
A snippet with ``await`` at the top level is a notebook cell and runs the way Jupyter
runs it: compiled with top-level await and awaited on a fresh loop.
"""

from __future__ import annotations

import ast
import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "python.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def snippets() -> list[tuple[int, str]]:
    text = PAGE.read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_page_covers_the_front_door() -> None:
    code = "\n".join(body for _, body in snippets())
    for name in ("flowpipe.load(", "flowpipe.plan(", "flowpipe.run(", "flowpipe.run_async(",
                 "progress=", "await flowpipe.run_async(", ".nodes", ".images"):
        assert name in code, name
    assert len(snippets()) >= 8


def _run(source: str, namespace: dict[str, Any], name: str) -> None:
    code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # a coroutine when the cell awaits at the top level
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def test_every_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    namespace: dict[str, Any] = {"__name__": "__snippets__"}
    for line, body in snippets():
        _run(body, namespace, f"docs/python.md:{line}")
    out = capsys.readouterr().out
    assert "True 12" in out  # the first snippet's promise
    assert "typo.yaml:" in out and "promt" in out
    assert "run_async" in out  # the refusal inside a running loop names it
    assert "0 4 0" in out  # the tally: everything from the cache
    assert (tmp_path / "out" / "campaign" / "report.html").exists()
    assert (tmp_path / "examples" / "campaign.lock.json").exists()
