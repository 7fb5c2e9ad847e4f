"""Layers point one way: the import graph, read from the source, and the library's words.

recipe ← planner ← engine ← the faces (front door, CLI); store and api sit beside the
planner and never reach up into the engine; the simulator is loaded only when a run
embeds it. Library messages speak of run options, never of the CLI's flags, and exit
codes are the CLI's mapping.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import flowpipe
from flowpipe import errors

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flowpipe"


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name (``from a import b`` counts as a.b when a.b is a module)
    lazy: bool  # inside a function: runs only when called
    typing: bool  # under ``if TYPE_CHECKING``: a dependency, but nothing loads
    line: int

    @property
    def loads(self) -> bool:
        """Whether importing the importer loads the imported module."""
        return not (self.lazy or self.typing)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        anchor = parts if is_package else parts[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [name if (ROOT / (name.replace(".", "/") + ".py")).exists()
            or (ROOT / name.replace(".", "/")).is_dir() else base for name in names]


Found = tuple[ast.Import | ast.ImportFrom, bool, bool]


def _walk(node: ast.AST, lazy: bool, typing: bool) -> Iterator[Found]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, lazy, typing
        inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, inner, typing or (isinstance(child, ast.If)
                                                  and _is_type_checking(child)))


def import_graph() -> list[Import]:
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node, lazy, typing in _walk(tree, False, False):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target == "flowpipe" or target.startswith("flowpipe."):
                    edges.append(Import(module, target, lazy, typing, node.lineno))
    return edges


GRAPH = import_graph()


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(importers: str, forbidden: tuple[str, ...]) -> list[str]:
    """Every import, lazy or for types only, from ``importers`` into ``forbidden``."""
    return [
        f"{e.importer}:{e.line} imports {e.imported}"
        for e in GRAPH
        if _under(e.importer, importers) and any(_under(e.imported, f) for f in forbidden)
    ]


def test_the_graph_is_read() -> None:
    """A reader that found nothing would make every rule below pass."""
    assert any(e.importer == "flowpipe.engine.runner" and e.imported == "flowpipe.planner"
               for e in GRAPH)
    assert any(e.importer == "flowpipe.engine.backend" and _under(e.imported, "flowpipe.sim")
               and e.lazy for e in GRAPH)
    assert any(e.importer == "flowpipe._front" and e.typing for e in GRAPH)


ABOVE_RECIPE = ("flowpipe.planner", "flowpipe.engine", "flowpipe.store", "flowpipe.report",
                "flowpipe.api", "flowpipe.sim", "flowpipe.cli", "flowpipe.summary",
                "flowpipe._front", "flowpipe.progress", "flowpipe.review", "flowpipe.compare")


@pytest.mark.parametrize(
    ("importers", "forbidden"),
    [
        pytest.param("flowpipe.recipe", ABOVE_RECIPE, id="recipe-imports-only-itself"),
        pytest.param("flowpipe.store", ("flowpipe.engine", "flowpipe.report", "flowpipe.sim",
                                        "flowpipe.cli", "flowpipe._front"),
                     id="store-below-engine"),
        pytest.param("flowpipe.api", ("flowpipe.engine", "flowpipe.store", "flowpipe.planner",
                                      "flowpipe.sim", "flowpipe.cli"), id="api-is-a-leaf"),
        pytest.param("flowpipe.planner", ("flowpipe.engine", "flowpipe.store", "flowpipe.api",
                                          "flowpipe.cli"), id="plan-before-run"),
        pytest.param("flowpipe.report", ("flowpipe.engine", "flowpipe.cli", "flowpipe.sim",
                                         "flowpipe.review", "flowpipe.compare"),
                     id="report-reads-files-only"),
        pytest.param("flowpipe.engine", ("flowpipe.cli", "flowpipe.progress", "flowpipe._front"),
                     id="engine-below-the-faces"),
        pytest.param("flowpipe.review", ("flowpipe.engine", "flowpipe.planner", "flowpipe.cli",
                                         "flowpipe.sim", "flowpipe._front", "flowpipe.api"),
                     id="review-serves-files-only"),
        pytest.param("flowpipe.compare", ("flowpipe.engine", "flowpipe.cli", "flowpipe.sim",
                                          "flowpipe._front", "flowpipe.api"),
                     id="compare-reads-plans-and-files"),
        pytest.param("flowpipe.why", ("flowpipe.engine", "flowpipe.report", "flowpipe.sim",
                                      "flowpipe.cli", "flowpipe.progress", "flowpipe.live",
                                      "flowpipe.summary", "flowpipe._front"),
                     id="why-below-the-engine"),
    ],
)
def test_layers_point_one_way(importers: str, forbidden: tuple[str, ...]) -> None:
    assert _violations(importers, forbidden) == []


def test_the_simulator_is_loaded_only_when_a_run_embeds_it() -> None:
    eager = [
        f"{e.importer}:{e.line}"
        for e in GRAPH
        if _under(e.imported, "flowpipe.sim") and not _under(e.importer, "flowpipe.sim")
        and e.loads
    ]
    assert eager == []


def test_import_flowpipe_loads_no_engine() -> None:
    """The front door's names come from light modules; the engine loads on the first run."""
    eager_from_root = {e.imported for e in GRAPH if e.importer in ("flowpipe", "flowpipe._front")
                       and e.loads}
    assert not any(_under(name, "flowpipe.engine") or _under(name, "flowpipe.planner")
                   for name in eager_from_root)


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
FACES = ("flowpipe.cli", "flowpipe.progress", "flowpipe.sim", "flowpipe.recipe")


def _messages(path: Path) -> Iterator[tuple[int, str]]:
    """String constants that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.lineno, node.value


def test_library_messages_name_no_cli_flag() -> None:
    """The CLI adds which flag an error is about (cli.FLAGS); the library names options.

    The simulator's own command line and the recipe's ``--var`` parser are faces too.
    """
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not any(_under(_module_name(path), face) for face in FACES)
        for line, text in _messages(path)
        if FLAG.search(text)
    ]
    assert found == []


def test_exit_codes_are_the_clis_mapping_not_attributes_of_errors() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        assert not hasattr(obj, "exit_code"), name


def test_every_module_is_private_or_documented() -> None:
    """Everything not in flowpipe.__all__ is private (_name) or named in the architecture."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if any(part.startswith("_") and part != "__init__" for part in module.split(".")):
            continue
        if module in ("flowpipe", "flowpipe.__main__"):
            continue
        package = module.rsplit(".", 1)[0]
        assert f"`{module}`" in page or (package != "flowpipe" and f"`{package}`" in page), module
    assert set(flowpipe.__all__) >= {"load", "plan", "run", "run_async", "RunResult"}
