"""Render prompts and references in a sandboxed Jinja environment.

Recipes come from git repositories people did not all write, so templates run in a
sandbox (flowpipe.recipe.sandbox) with ``StrictUndefined``: no attribute access to
internals, no mutation, no file loader (``include`` and ``import`` fail), an undefined
name is an error instead of an empty string, and every render has a budget of size,
steps and work (flowpipe.recipe.limits), so a template cannot ask for a gigabyte string
or a billion loop turns. Every failure becomes a TemplateError at the template's place
in the recipe.

Templates are compiled once per distinct source text: a matrix step renders the same
template for every variant, so this cache is what keeps planning 10,000 nodes fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError

from flowpipe.errors import Location, TemplateError
from flowpipe.recipe.limits import DOCS, Budget, LimitError, RenderLimits, active_budget
from flowpipe.recipe.messages import did_you_mean, one_line
from flowpipe.recipe.sandbox import Sandbox, UnstableError

__all__ = ["Renderer"]

_SIMPLE = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*) *\}\}")
_MISSING = object()
_JINJA_WORDS = frozenset(
    ("and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False")
) | {"None"}
_UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined")


_Compiled = Template | tuple[str, ...] | TemplateError


class Renderer:
    """Renders template strings, compiling each distinct source once.

    A template made only of text and ``{{ name }}`` is rendered by substitution
    (``str(value)``, what Jinja prints), skipping Jinja's per-render context set-up;
    anything else, or a name that is not defined, goes through the sandbox.
    """

    def __init__(self, *, limits: RenderLimits | None = None) -> None:
        self.limits = limits or RenderLimits()
        self._env = Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self._globals = dict(self._env.globals)
        self._compiled: dict[str, _Compiled] = {}
        self._totals = [0, 0]  # steps and work of every render so far

    def render(
        self,
        source: str,
        variables: Mapping[str, Any],
        *,
        what: Callable[[], str],
        where: Callable[[int], Location],
    ) -> str:
        """Render ``source``; ``what()`` names it in messages, ``where(line)`` places it."""
        if "{" not in source:  # no Jinja syntax: plain strings skip Jinja (every node's strings)
            return source
        compiled = self._compiled.get(source)
        if compiled is None:
            compiled = self._compile(source, what, where)
            self._compiled[source] = compiled
        if isinstance(compiled, tuple):
            text = _substitute(compiled, variables)
            if text is not None:
                if len(text) > self.limits.max_text:
                    raise self._runtime_error(
                        LimitError(f"the output would build more than {self.limits.max_text:,} "
                                   "characters"), variables, what(), where)
                return text
            compiled = self._compiled[source] = self._compile(source, what, where, simple=False)
        if isinstance(compiled, TemplateError):
            raise compiled
        assert isinstance(compiled, Template)
        context = compiled.new_context({**self._globals, **variables}, shared=True)
        with active_budget(Budget(self.limits, self._totals)) as budget:
            try:
                try:
                    return budget.join_output(compiled.root_render_func(context))
                except Exception:  # let Jinja point the traceback at template lines
                    self._env.handle_exception()
            except Exception as exc:  # any failure of a user's template is theirs
                raise self._runtime_error(exc, variables, what(), where) from None

    def _compile(
        self,
        source: str,
        what: Callable[[], str],
        where: Callable[[int], Location],
        *,
        simple: bool = True,
    ) -> _Compiled:
        if simple and "\r" not in source:
            parts = _SIMPLE.split(source)
            if not any("{" in text for text in parts[::2]) and _JINJA_WORDS.isdisjoint(
                parts[1::2]
            ):
                return tuple(parts)
        try:
            with active_budget(Budget(self.limits, self._totals)):  # constants fold at compile
                return self._env.from_string(source)
        except TemplateSyntaxError as exc:
            return TemplateError(
                f"{what()}: template syntax: {one_line(exc.message or 'invalid template')}",
                where(exc.lineno or 1),
                hint="see https://jinja.palletsprojects.com/templates/",
            )
        except Exception as exc:  # e.g. a RecursionError on absurd nesting
            return TemplateError(f"{what()}: template cannot be read: {_text(exc)}", where(1))

    @staticmethod
    def _runtime_error(
        exc: BaseException,
        variables: Mapping[str, Any],
        what: str,
        where: Callable[[int], Location],
    ) -> TemplateError:
        line = _template_line(exc.__traceback__)
        if isinstance(exc, UndefinedError):
            match = _UNDEFINED_NAME.search(str(exc))
            if match:
                name = match.group(1)
                near = did_you_mean(name, [str(k) for k in variables])
                return TemplateError(
                    f"{what}: variable {name!r} is undefined{near}",
                    where(line),
                    hint=None if near else "define it under 'vars' or in the step's matrix",
                )
            return TemplateError(f"{what}: {_text(exc)}", where(line))
        if isinstance(exc, LimitError):
            return TemplateError(f"{what}: over a limit: {_text(exc)}", where(line), hint=DOCS)
        if isinstance(exc, UnstableError):
            return TemplateError(
                f"{what}: {_text(exc)}: keys must be stable (the same recipe must make the "
                "same requests, or the cache never answers)",
                where(line),
                hint=exc.hint,
            )
        if isinstance(exc, RecursionError):
            return TemplateError(f"{what}: templates or macros nest too deeply", where(line))
        if isinstance(exc, SecurityError):
            return TemplateError(
                f"{what}: unsafe template: {_text(exc)}",
                where(line),
                hint="templates may use variables, filters and tests only",
            )
        if isinstance(exc, JinjaTemplateError):
            return TemplateError(f"{what}: {_text(exc)}", where(line))
        if isinstance(exc, TypeError) and "no loader" in str(exc):
            return TemplateError(
                f"{what}: templates cannot include or import other templates", where(line)
            )
        return TemplateError(
            f"{what}: template failed: {type(exc).__name__}: {_text(exc)}", where(line)
        )

def _substitute(parts: tuple[str, ...], variables: Mapping[str, Any]) -> str | None:
    """Text and names alternate in ``parts``; None when a name is not defined."""
    out = list(parts)
    for i in range(1, len(parts), 2):
        value = variables.get(parts[i], _MISSING)
        if value is _MISSING:
            return None
        out[i] = str(value)
    return "".join(out)


def _text(exc: BaseException) -> str:
    return one_line(str(exc) or type(exc).__name__, 200)


def _template_line(tb: TracebackType | None) -> int:
    """The template line where a render failed (Jinja rewrites frames to ``<template>``)."""
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
