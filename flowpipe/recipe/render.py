"""Render prompts and references in a sandboxed Jinja environment.

Recipes come from git repositories people did not all write, so templates run in
``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: no attribute access to
internals, no mutation, no file loader (``include`` and ``import`` fail), and an
undefined name is an error instead of an empty string. ``*`` and ``**`` are checked
so a template cannot ask for a gigabyte string or a number with a billion digits.
Every failure becomes a TemplateError at the template's place in the recipe.

Templates are compiled once per distinct source text: a matrix step renders the same
template for every variant, so this cache is what keeps planning 10,000 nodes fast.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flowpipe.errors import Location, TemplateError
from flowpipe.recipe.messages import did_you_mean, one_line

__all__ = ["Renderer", "is_template"]

MAX_REPEAT = 100_000  # longest string or list ``*`` may build
MAX_EXPONENT_BITS = 4_096  # largest integer ``**`` may build, in bits

_SIMPLE = re.compile(r"\{\{ *([A-Za-z_][A-Za-z0-9_]*) *\}\}")
_MISSING = object()
_JINJA_WORDS = frozenset(
    ("and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False")
) | {"None"}
_UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined")


def is_template(text: str) -> bool:
    """True when ``text`` has Jinja syntax; plain strings skip Jinja entirely."""
    return "{" in text


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus size limits on ``*`` and ``**``."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_REPEAT
                ):
                    raise SecurityError(f"'*' would build more than {MAX_REPEAT} items")
            return operator.mul(left, right)
        if op == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and right > 0
                and left.bit_length() * right > MAX_EXPONENT_BITS
            ):
                raise SecurityError("'**' would build a number too large to use")
            return operator.pow(left, right)
        return super().call_binop(context, op, left, right)


_Compiled = Template | tuple[str, ...] | TemplateError


class Renderer:
    """Renders template strings, compiling each distinct source once.

    A template made only of text and ``{{ name }}`` is rendered by substitution
    (``str(value)``, what Jinja prints), skipping Jinja's per-render context set-up;
    anything else, or a name that is not defined, goes through the sandbox.
    """

    def __init__(self) -> None:
        self._env = _Sandbox(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self._globals = dict(self._env.globals)
        self._compiled: dict[str, _Compiled] = {}

    def render(
        self,
        source: str,
        variables: Mapping[str, Any],
        *,
        what: Callable[[], str],
        where: Callable[[int], Location],
    ) -> str:
        """Render ``source``; ``what()`` names it in messages, ``where(line)`` places it."""
        if not is_template(source):
            return source
        compiled = self._compiled.get(source)
        if compiled is None:
            compiled = self._compile(source, what, where)
            self._compiled[source] = compiled
        if isinstance(compiled, tuple):
            text = _substitute(compiled, variables)
            if text is not None:
                return text
            compiled = self._compiled[source] = self._compile(source, what, where, simple=False)
        if isinstance(compiled, TemplateError):
            raise compiled
        assert isinstance(compiled, Template)
        context = compiled.new_context({**self._globals, **variables}, shared=True)
        try:
            try:
                return "".join(compiled.root_render_func(context))
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
