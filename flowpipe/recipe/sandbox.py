"""The Jinja environment templates render in: immutable sandbox plus size and step limits.

``ImmutableSandboxedEnvironment`` already refuses internals (``__class__``, ``__globals__``)
and mutation. On top of it, every place where a template can do work reports to the
render's ``Budget`` (flowpipe.recipe.limits, sizes from flowpipe.recipe.growth):

- operators ``+``, ``*``, ``**``, ``%``, comparisons and ``~`` are checked before they run;
- every call, filter, test and lookup costs a step; methods and filters that can
  outgrow their inputs are checked before they run, and every result after;
- the compiled code of a ``for`` loop counts each item it takes (also the items a
  ``loop(...)`` recursion takes), so nested loops cannot spin for minutes;
- output, captured blocks and macro results are checked before they are joined.

What a template renders goes into a request key, so it must be the same on every run:
``lipsum()`` and ``|random`` (Jinja's only sources of chance), and printing an object
whose text holds its memory address (``<generator object ...>``, ``<function ...>``),
are refused with an ``UnstableError``.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.runtime import LoopContext, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

from flowpipe.recipe.growth import (
    CHEAP_FILTERS,
    FILTER_CHECKS,
    check_call,
    check_format,
    check_printf,
)
from flowpipe.recipe.limits import MAX_INT_BITS, LimitError, budget

__all__ = ["CALL_STEPS", "Sandbox", "UnstableError"]

#: Steps a macro call, a recursive ``loop(...)`` or a ``str.format`` costs: each does
#: the work of a few dozen lookups (measured in benchmarks/template_limits.py).
CALL_STEPS = 20

#: Tests that compare their input with their argument, reading both.
_COMPARING_TESTS = frozenset(
    {"in", "eq", "==", "equalto", "ne", "!=", "lt", "<", "lessthan", "le", "<=", "gt", ">",
     "greaterthan", "ge", ">="}
)
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gteq": operator.ge,
    "lt": operator.lt, "lteq": operator.le,
    "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}


#: The end of ``<generator object unique at 0x7f...>``: an object printed as its address.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")
_STABLE = "write the words yourself, or list the choices in a matrix"


class UnstableError(Exception):
    """A template asked for something that differs from run to run (no stable key)."""

    def __init__(self, message: str, hint: str = _STABLE) -> None:
        super().__init__(message)
        self.hint = hint


def _refused(what: str, why: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise UnstableError(f"{what} {why}")

    refuse.__name__ = what
    return refuse


class _Generator(CodeGenerator):
    """Jinja's code generator, with loops, ``~`` and comparisons reporting to the budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        it = node.iter
        if not (isinstance(it, nodes.Call) and isinstance(it.node, nodes.EnvironmentAttribute)
                and it.node.name == "loop_items"):
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("loop_items"), [it], [], None, None, lineno=it.lineno
            )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            func = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func = "markup_join"
        else:
            func = "str_join"
        self.write(f"{func}(environment.concat_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("environment.compare((")
        self.visit(node.expr, frame)
        for op in node.ops:
            self.write(f", {op.op!r}, ")
            self.visit(op.expr, frame)
        self.write(",))")


def _counted(items: Iterable[Any]) -> Iterator[Any]:
    current = budget()
    for item in items:
        current.step()
        yield item


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 0 if _PassArg.from_obj(func) is None else 1
    check = FILTER_CHECKS.get(name)
    cheap = name in CHEAP_FILTERS
    what = f"filter {name!r}"

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        current = budget()
        current.step()
        head, args = args[:skip], args[skip:]
        if args and not cheap:
            current.read(args[0])
        if check is not None:
            args, kwargs = check(current, *args, **kwargs)
        return current.built(func(*head, *args, **kwargs), what)

    return bounded


def _bounded_test(name: str, func: Any) -> Callable[..., Any]:
    comparing = name in _COMPARING_TESTS

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        current = budget()
        current.step()
        if comparing and len(args) >= 2:
            read = current.weight(args[-1]) if name == "in" else min(
                current.weight(args[-2]), current.weight(args[-1])
            )
            current.charge(read)
        return func(*args, **kwargs)

    return bounded


def _finalize(value: Any) -> Any:
    """What ``{{ ... }}`` prints: checked before it is turned into text, and refused when
    that text would hold a memory address (it differs on every run)."""
    current = budget()
    current.predict(current.weight(value), "the output")
    if not isinstance(value, int | float):
        text = value if isinstance(value, str) else str(value)
        if " at 0x" in text and _ADDRESS.search(text):
            what = "text" if isinstance(value, str) else f"a {type(value).__name__}"
            raise UnstableError(f"prints {what} holding a memory address, which differs on "
                                "every run", "a generator or an object is not text: end it "
                                "with |list or |join")
    return value


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every growth and every loop counted against a budget."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.filters = {k: _bounded_filter(k, f) for k, f in self.filters.items()}
        self.tests = {k: _bounded_test(k, f) for k, f in self.tests.items()}
        self.globals["lipsum"] = _refused("lipsum()", "writes other words on every run")
        self.filters["random"] = _refused("filter 'random'", "picks another item on every run")

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """Join captured output (``{% set %}`` blocks, macros) once its size is known."""
        pieces = list(parts)
        budget().predict(sum(len(p) for p in pieces), "the template's output")
        return "".join(pieces)

    def loop_items(self, items: Any) -> Any:
        """What a ``for`` loop iterates: every item costs a step."""
        return items if isinstance(items, Undefined) else _counted(items)

    def concat_parts(self, parts: tuple[Any, ...]) -> tuple[Any, ...]:
        current = budget()
        current.step()
        current.predict(sum(current.weight(p) for p in parts), "'~'")
        return parts

    def compare(self, chain: tuple[Any, ...]) -> bool:
        """``a < b <= c``: each pair compared in turn, reading the smaller side."""
        current = budget()
        left = chain[0]
        for i in range(1, len(chain), 2):
            op, right = chain[i], chain[i + 1]
            current.step()
            if op in ("in", "notin"):
                current.charge(current.weight(right))
            else:
                current.charge(min(current.weight(left), current.weight(right)))
            if not _COMPARE[op](left, right):
                return False
            left = right
        return True

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        current = budget()
        current.step()
        what = f"'{op}'"
        if op == "+" and isinstance(left, str | bytes | list | tuple) and isinstance(
            right, str | bytes | list | tuple
        ):
            current.predict(current.weight(left) + current.weight(right), what)
        elif op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                    current.predict(current.weight(seq) * max(times, 0), what)
            if isinstance(left, int) and isinstance(right, int) and (
                left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise LimitError("'*' would build a number too large to use")
        elif op == "**":
            if (isinstance(left, int) and isinstance(right, int) and right > 0
                    and left.bit_length() * right > MAX_INT_BITS):
                raise LimitError("'**' would build a number too large to use")
        elif op == "%" and isinstance(left, str | bytes):
            check_printf(left, right, current, what)
        return current.built(super().call_binop(context, op, left, right), what)

    def getattr(self, obj: Any, attribute: str) -> Any:
        budget().step()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current = budget()
        current.step()
        value = super().getitem(obj, argument)
        return current.built(value, "a slice") if isinstance(argument, slice) else value

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        current = budget()
        current.step()
        wrapped: Any = getattr(obj, "__wrapped__", None)
        formats = isinstance(getattr(wrapped, "__self__", None), str) and getattr(
            wrapped, "__name__", ""
        ) in ("format", "format_map")
        if formats or isinstance(obj, Macro | LoopContext):
            current.step(CALL_STEPS - 1)
        if isinstance(obj, LoopContext) and args:  # a recursive loop's next level
            args = (self.loop_items(args[0]), *args[1:])
        if formats:
            fmt: str = wrapped.__self__
            if wrapped.__name__ == "format_map" and args and isinstance(args[0], dict):
                check_format(fmt, (), args[0], current, "'.format_map()'")
            else:
                check_format(fmt, args, kwargs, current, "'.format()'")
        else:
            args = check_call(obj, args, kwargs, current)
        result = super().call(context, obj, *args, **kwargs)
        return current.built(result, f"'{getattr(obj, '__name__', 'call')}()'")
