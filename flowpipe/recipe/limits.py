"""How much a template may build and how long it may run, checked before the work is done.

A recipe may come from a pull request nobody has read yet, and ``flowpipe validate``
renders every template in it. Jinja's sandbox keeps a template away from Python's
internals, but not from asking for a billion characters (``'x'|center(10**9)``,
``'%01000000000d' % 1``) or a billion loop turns (two nested ``range(100000)``). So each
render carries a ``Budget``:

- no value a template builds, and no output, may be longer than ``max_text`` characters
  (or items); operations that can make a value larger than their inputs (padding,
  repetition, format widths, joins, replacements, ...) are checked *before* they run;
- every loop turn, call, filter, test, lookup, operator and comparison costs a step, and
  what an operation reads or builds costs ``work`` (characters or items), per render and
  for the whole recipe.

A render's time is thus bounded by its steps and work, and its memory by a small multiple
of ``max_text``. flowpipe.recipe.growth predicts what growing operations would build;
flowpipe.recipe.sandbox calls both. The figures are in docs/recipes.md ("Limits").
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.utils import Namespace

__all__ = [
    "DOCS",
    "MAX_INT_BITS",
    "Budget",
    "LimitError",
    "RenderLimits",
    "active_budget",
    "budget",
    "figure",
    "weight",
]

#: Largest integer a template may build with ``*`` or ``**``, in bits (about 1,200 digits).
MAX_INT_BITS = 4_096
DOCS = "see docs/recipes.md#limits"


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderLimits:
    """The limits of one render and of all the renders of one recipe."""

    max_text: int = 100_000  # characters (or items) of any value or output
    max_steps: int = 100_000  # loop turns, calls, filters, tests, lookups per render
    max_work: int = 1_000_000  # characters and items read or built per render
    max_total_steps: int = 10_000_000  # ... by every render of a recipe together
    max_total_work: int = 100_000_000


class LimitError(SecurityError):
    """A template asked for more than a limit allows."""


def figure(n: int) -> str:
    """``100,000``: how limits are written in messages."""
    return f"{n:,}"


class Budget:
    """What one render has used; ``totals`` is shared by every render of a recipe."""

    __slots__ = ("_weights", "limits", "steps", "totals", "work")

    def __init__(self, limits: RenderLimits, totals: list[int]) -> None:
        self.limits = limits
        self.totals = totals  # [steps, work] of the renders before this one
        self.steps = 0
        self.work = 0
        self._weights: dict[int, tuple[Any, int]] = {}

    def step(self, count: int = 1) -> None:
        """One loop turn, call, filter, test, lookup or operator (or ``count`` of them)."""
        self.steps += count
        if self.steps > self.limits.max_steps:
            raise LimitError(
                f"the template takes more than {figure(self.limits.max_steps)} steps "
                f"(loop turns, calls, filters); the limit is there to stop runaway loops"
            )
        self.totals[0] += count
        if self.totals[0] > self.limits.max_total_steps:
            raise LimitError(
                f"the recipe's templates take more than {figure(self.limits.max_total_steps)} "
                "steps in all"
            )

    def charge(self, size: int) -> None:
        """Characters or items read or built by one operation."""
        self.work += size
        if self.work > self.limits.max_work:
            raise LimitError(
                f"the template reads and builds more than {figure(self.limits.max_work)} "
                "characters in all"
            )
        self.totals[1] += size
        if self.totals[1] > self.limits.max_total_work:
            raise LimitError(
                f"the recipe's templates read and build more than "
                f"{figure(self.limits.max_total_work)} characters in all"
            )

    def predict(self, size: int, what: str) -> None:
        """Refuse, before it runs, an operation whose result would be ``size`` long."""
        if size > self.limits.max_text:
            raise LimitError(
                f"{what} would build more than {figure(self.limits.max_text)} characters"
            )
        self.charge(size)

    def weight(self, value: Any) -> int:
        """``weight(value)``, remembered per container for the rest of the render."""
        kind = type(value)
        if kind is str or kind is bytes:
            return len(value)
        if kind is int:
            return value.bit_length() * 3 // 10 + 1  # type: ignore[no-any-return]
        if kind is float or kind is bool or value is None:
            return 24
        known = self._weights.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        size = weight(value, self.limits.max_text)
        self._weights[id(value)] = (value, size)
        return size

    def read(self, value: Any) -> int:
        """Charge reading ``value`` whole; refuse one that is over the text limit."""
        size = self.weight(value)
        if size > self.limits.max_text:
            raise LimitError(
                f"a value of more than {figure(self.limits.max_text)} characters is used"
            )
        self.charge(size)
        return size

    def join_output(self, chunks: Iterable[str]) -> str:
        """A render's output, refused as soon as it passes ``max_text``."""
        parts: list[str] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > self.limits.max_text:
                raise LimitError(
                    f"the output would build more than {figure(self.limits.max_text)} characters"
                )
            parts.append(chunk)
        return "".join(parts)

    def built(self, value: Any, what: str) -> Any:
        """Check and charge a value an operation has just built; return it."""
        kind = type(value)
        if kind is str:
            self.predict(len(value), what)
        elif not (kind is int or kind is float or kind is bool or value is None):
            self.predict(self.weight(value), what)
        return value


_BUDGET: ContextVar[Budget | None] = ContextVar("flowpipe_template_budget", default=None)


@contextlib.contextmanager
def active_budget(current: Budget) -> Iterator[Budget]:
    """Make ``current`` the budget of everything rendered in this block."""
    token = _BUDGET.set(current)
    try:
        yield current
    finally:
        _BUDGET.reset(token)


def budget() -> Budget:
    """The budget of the render in progress (a fresh default one outside a render)."""
    current = _BUDGET.get()
    return current if current is not None else Budget(RenderLimits(), [0, 0])


def weight(value: Any, cap: int) -> int:
    """About ``len(str(value))``: what printing or copying ``value`` costs.

    Containers are walked item by item, stopping once the count passes ``cap``; a
    ``range`` weighs its length (iterating it is the cost), numbers their digits.
    """
    total = 0
    stack: list[Any] = [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() * 3 // 10 + 1
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, range):
            total += len(item)
        elif isinstance(item, Mapping):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, Namespace):
            stack.append(item._Namespace__attrs)
        elif isinstance(item, Collection) and not isinstance(item, Undefined):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 1  # iterators, functions, undefined: what they yield is charged later
    return total
