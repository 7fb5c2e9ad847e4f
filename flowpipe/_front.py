"""The front door: load, plan and run a recipe from Python (docs/python.md).

Thin on purpose: each function checks what a Python caller passes and hands over to
the planner or the engine, imported only when called so ``import flowpipe`` stays
light.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from flowpipe.errors import UsageError

if TYPE_CHECKING:
    from flowpipe.engine.runner import RunOptions
    from flowpipe.events import Event, EventSink
    from flowpipe.planner import Plan, Recipe
    from flowpipe.results import RunResult

    #: Where progress goes: a function of one event, or an object with ``handle(event)``.
    Progress = Callable[[Event], object] | EventSink

__all__ = ["Progress", "load", "plan", "run", "run_async"]

PathLike = str | os.PathLike[str]


def __getattr__(name: str) -> Any:
    """``Progress`` names the event types, so it is made when asked for: importing
    flowpipe (and so starting the CLI) does not load the events."""
    if name == "Progress":
        from flowpipe.events import Event, EventSink

        return Callable[[Event], object] | EventSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(path: PathLike) -> Recipe:
    """Load and check the recipe at ``path``; a ``RecipeError`` says what is wrong where."""
    from flowpipe.planner import load_recipe

    return load_recipe(path)


def plan(
    recipe: Recipe | PathLike,
    *,
    variables: Mapping[str, object] | None = None,
    backend: Literal["sim", "useapi"] = "sim",
) -> Plan:
    """The DAG a run of ``recipe`` would execute, with every node's request and key.

    ``variables`` override the recipe's ``vars``; ``backend`` is the kind of API the
    keys are for (a simulated result never answers a real request). Nothing is sent.
    """
    from flowpipe.planner import build_plan

    return build_plan(recipe, overrides=variables or {}, backend=backend)


def run(recipe: Recipe | PathLike, *, out: PathLike, progress: Progress | None = None,
        **options: Any) -> RunResult:
    """Run ``recipe`` and write its images, manifest.json and run.json under ``out``.

    ``options`` are the fields of ``flowpipe.engine.RunOptions`` (docs/python.md lists
    them). Blocks until the run ends; Ctrl-C stops sending, twice abandons. Inside a
    running event loop (a notebook, an async function) use ``await run_async(...)``.
    """
    import asyncio  # here, not at the top: `flowpipe --help` has no use for it

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from flowpipe.engine.runner import run_recipe

        return run_recipe(recipe, _options(out, options), sinks=_sinks(progress))
    raise UsageError(
        "flowpipe.run() cannot wait inside a running event loop (a notebook, an async "
        "function)",
        hint="use `await flowpipe.run_async(...)` there",
    )


async def run_async(recipe: Recipe | PathLike, *, out: PathLike,
                    progress: Progress | None = None, **options: Any) -> RunResult:
    """``run`` for callers that are already in an event loop: ``await run_async(...)``."""
    from flowpipe.engine.runner import run_recipe_async

    return await run_recipe_async(recipe, _options(out, options), sinks=_sinks(progress))


def _options(out: PathLike, options: Mapping[str, Any]) -> RunOptions:
    import dataclasses

    from flowpipe.engine.runner import RunOptions

    known = {f.name for f in dataclasses.fields(RunOptions)} - {"out"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(
            f"unknown run option {', '.join(map(repr, unknown))}",
            hint=f"the options are {', '.join(sorted(known))}",
        )
    return RunOptions(out=Path(out), **options)


class _CallbackSink:
    """An event sink that hands each event to a plain function."""

    __slots__ = ("_callback",)

    def __init__(self, callback: Callable[[Event], object]) -> None:
        self._callback = callback

    def handle(self, event: Event) -> None:
        self._callback(event)


def _sinks(progress: Progress | None) -> tuple[EventSink, ...]:
    if progress is None:
        return ()
    if callable(getattr(progress, "handle", None)):
        return (progress,)  # type: ignore[return-value]  # it has handle(event)
    if callable(progress):
        return (_CallbackSink(progress),)
    raise UsageError(
        f"progress must be a function of one event or have handle(event), not {progress!r}"
    )
