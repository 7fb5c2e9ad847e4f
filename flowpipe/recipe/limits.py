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
of ``max_text``. The figures are documented in docs/recipes.md ("Limits").
"""

from __future__ import annotations

import contextlib
import functools
import re
import string
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.utils import Namespace

__all__ = [
    "CHEAP_FILTERS",
    "DOCS",
    "FILTER_CHECKS",
    "MAX_INT_BITS",
    "Budget",
    "LimitError",
    "RenderLimits",
    "active_budget",
    "budget",
    "check_call",
    "check_format",
    "check_lipsum",
    "check_printf",
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


def _fmt(n: int) -> str:
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
                f"the template takes more than {_fmt(self.limits.max_steps)} steps "
                f"(loop turns, calls, filters); the limit is there to stop runaway loops"
            )
        self.totals[0] += count
        if self.totals[0] > self.limits.max_total_steps:
            raise LimitError(
                f"the recipe's templates take more than {_fmt(self.limits.max_total_steps)} "
                "steps in all"
            )

    def charge(self, size: int) -> None:
        """Characters or items read or built by one operation."""
        self.work += size
        if self.work > self.limits.max_work:
            raise LimitError(
                f"the template reads and builds more than {_fmt(self.limits.max_work)} "
                "characters in all"
            )
        self.totals[1] += size
        if self.totals[1] > self.limits.max_total_work:
            raise LimitError(
                f"the recipe's templates read and build more than "
                f"{_fmt(self.limits.max_total_work)} characters in all"
            )

    def predict(self, size: int, what: str) -> None:
        """Refuse, before it runs, an operation whose result would be ``size`` long."""
        if size > self.limits.max_text:
            raise LimitError(
                f"{what} would build more than {_fmt(self.limits.max_text)} characters"
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
                f"a value of more than {_fmt(self.limits.max_text)} characters is used"
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
                    f"the output would build more than {_fmt(self.limits.max_text)} characters"
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


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# -- printf (``%``, ``|format``) and ``str.format`` ------------------------------------

_FORMATTER = string.Formatter()
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _widths(numbers: Iterable[str], cap: int, what: str) -> int:
    total = 0
    for digits in numbers:
        if digits and (len(digits) > 9 or int(digits) > cap):
            raise LimitError(f"{what}: a width or precision of {digits[:12]} is over the limit of "
                             f"{_fmt(cap)} characters")
        total += int(digits or 0)
    return total


def _ints_within(args: Iterable[Any], cap: int, what: str) -> None:
    for arg in args:
        if _int(arg) > cap:
            raise LimitError(f"{what}: a width of {_fmt(arg)} is over the limit of {_fmt(cap)}")


@functools.lru_cache(maxsize=512)
def _printf_shape(text: str, cap: int, what: str) -> tuple[int, int, bool]:
    """(conversions, sum of widths and precisions, any ``*``) of a printf format."""
    specs = list(_PRINTF.finditer(text))
    width = _widths((g for m in specs for g in m.groups() if g and g != "*"), cap, what)
    return len(specs), width, any("*" in (m.group(1), m.group(2)) for m in specs)


def check_printf(fmt: str | bytes, args: Any, current: Budget, what: str) -> None:
    """``fmt % args``: widths and precisions within the limit, result within the limit."""
    text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
    cap = current.limits.max_text
    count, width, star = _printf_shape(text, cap, what)
    values = list(args) if isinstance(args, tuple) else [args]
    if star:
        _ints_within(values, cap, what)
    largest = max((current.weight(v) for v in _flat(values)), default=0)
    current.predict(len(text) + width + count * largest, what)


def _flat(values: Iterable[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, Mapping):
            yield from value.values()
        else:
            yield value


def check_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                 current: Budget, what: str) -> None:
    """``fmt.format(*args, **kwargs)``: widths within the limit, result within the limit."""
    cap = current.limits.max_text
    try:
        count, width, nested = _format_shape(fmt, cap, what)
    except ValueError:
        return  # the call itself raises the same error
    if nested:  # nested fields take widths from the arguments
        _ints_within([*args, *kwargs.values()], cap, what)
    largest = max((current.weight(v) for v in (*args, *kwargs.values())), default=0)
    current.predict(len(fmt) + width + count * largest, what)


@functools.lru_cache(maxsize=512)
def _format_shape(fmt: str, cap: int, what: str) -> tuple[int, int, bool]:
    """(fields, sum of the numbers in their specs, any nested field) of a str.format."""
    specs = [spec or "" for _, name, spec, _ in _FORMATTER.parse(fmt) if name is not None]
    joined = "".join(specs)
    return len(specs), _widths(_DIGITS.findall(joined), cap, what), "{" in joined


# -- methods of str and bytes that can outgrow their inputs ------------------------------


def _pad(s: Any, width: Any = 0, *_: Any) -> int:
    return max(len(s), _int(width))


def _expandtabs(s: Any, tabsize: Any = 8) -> int:
    tabs: int = s.count("\t" if isinstance(s, str) else b"\t")
    return len(s) + tabs * max(_int(tabsize, 8), 0)


def _join(sep: Any, items: list[Any]) -> int:
    return sum(weight(i, 1 << 62) for i in items) + max(len(items) - 1, 0) * len(sep)


def _replace(s: Any, old: Any = "", new: Any = "", count: Any = -1) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(s)
    hits = len(s) + 1 if not old else s.count(old)
    if _int(count, -1) >= 0:
        hits = min(hits, _int(count))
    return len(s) + hits * max(len(new) - len(old), 0)


def _translate(s: Any, table: Any = None, *_: Any) -> int:
    if isinstance(table, Mapping):
        longest = max((weight(v, 1 << 62) for v in table.values()), default=1)
        return len(s) * max(longest, 1)
    return len(s)


_GROWING: Mapping[str, Callable[..., int]] = {
    "center": _pad, "ljust": _pad, "rjust": _pad, "zfill": _pad,
    "expandtabs": _expandtabs, "replace": _replace, "translate": _translate,
}


def check_call(func: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any],
               current: Budget) -> tuple[Any, ...]:
    """Check a call of a str/bytes/int method before it runs; returns the args to use.

    ``join`` gets its items as a list, so that what it is given is counted once.
    """
    owner = getattr(func, "__self__", None)
    name = getattr(func, "__name__", "")
    what = f"'.{name}()'"
    if isinstance(owner, str | bytes):
        if name == "join" and args:
            items = list(args[0])
            current.predict(_join(owner, items), what)
            return (items, *args[1:])
        grow = _GROWING.get(name)
        if grow is not None:
            current.predict(grow(owner, *args, *kwargs.values()), what)
    elif isinstance(owner, int) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        current.predict(_int(length, 1), what)
    return args


# -- filters that can outgrow their inputs ------------------------------------------------
# Each takes the budget and the filter's own arguments (without Jinja's context argument)
# and returns the arguments to call the filter with (an iterator may become a list, so
# that it is read once).

FilterCheck = Callable[..., tuple[tuple[Any, ...], dict[str, Any]]]


def _f_center(b: Budget, value: Any, width: Any = 80) -> Any:
    b.predict(max(b.weight(value), _int(width)), "filter 'center'")
    return (value, width), {}


def _f_indent(b: Budget, s: Any, width: Any = 4, first: Any = False, blank: Any = False) -> Any:
    text = str(s)
    pad = len(width) if isinstance(width, str) else _int(width)
    b.predict(len(text) + (text.count("\n") + 1) * pad, "filter 'indent'")
    return (s, width, first, blank), {}


def _f_wordwrap(b: Budget, s: Any, width: Any = 79, *rest: Any, **kwargs: Any) -> Any:
    text = str(s)
    wrap = kwargs.get("wrapstring", rest[1] if len(rest) > 1 else None)
    lines = min(len(text) // max(_int(width, 1), 1) + text.count(" ") + text.count("\n") + 1,
                len(text) + 1)
    b.predict(len(text) + lines * len(str(wrap or "\n")), "filter 'wordwrap'")
    return (s, width, *rest), kwargs


def _f_replace(b: Budget, s: Any, old: Any, new: Any, count: Any = None) -> Any:
    b.predict(_replace(str(s), str(old), str(new), -1 if count is None else count),
              "filter 'replace'")
    return (s, old, new, count), {}


def _f_join(b: Budget, value: Any, d: Any = "", attribute: Any = None) -> Any:
    items = value if isinstance(value, str) else list(value)
    if attribute is None:
        b.predict(_join(str(d), list(items)), "filter 'join'")
    return (items, d, attribute), {}


def _f_format(b: Budget, value: Any, *args: Any, **kwargs: Any) -> Any:
    check_printf(str(value), kwargs or args, b, "filter 'format'")
    return (value, *args), kwargs


def _f_batch(b: Budget, value: Any, linecount: Any, fill_with: Any = None) -> Any:
    b.predict(_int(linecount), "filter 'batch'")
    return (value, linecount, fill_with), {}


def _f_slice(b: Budget, value: Any, slices: Any, fill_with: Any = None) -> Any:
    b.predict(_int(slices), "filter 'slice'")
    return (value, slices, fill_with), {}


def _f_sum(b: Budget, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
    items = list(iterable)
    if not isinstance(start, int | float) or any(
        not isinstance(i, int | float) for i in items[:1]
    ):  # sequences: each '+' copies what was summed so far
        total = b.weight(start) + sum(b.weight(i) for i in items)
        b.predict(total, "filter 'sum'")
        b.charge(len(items) * total)
    return (items, attribute, start), {}


def _f_tojson(b: Budget, value: Any, indent: Any = None) -> Any:
    b.predict(b.weight(value) * (6 + 2 * _int(indent)), "filter 'tojson'")
    return (value, indent), {}


def _f_urlize(b: Budget, value: Any, *args: Any, **kwargs: Any) -> Any:
    text = str(value)
    extra = sum(len(str(v)) for v in (*args, *kwargs.values()) if isinstance(v, str))
    b.predict(3 * len(text) + len(text.split()) * (60 + extra), "filter 'urlize'")
    return (value, *args), kwargs


FILTER_CHECKS: Mapping[str, FilterCheck] = {
    "center": _f_center, "indent": _f_indent, "wordwrap": _f_wordwrap,
    "replace": _f_replace, "join": _f_join, "format": _f_format, "batch": _f_batch,
    "slice": _f_slice, "sum": _f_sum, "tojson": _f_tojson, "urlize": _f_urlize,
}

#: Filters that look at their input without reading it whole: they cost a step only.
CHEAP_FILTERS = frozenset(
    {"attr", "count", "length", "d", "default", "first", "safe", "abs", "int", "float",
     "round", "random", "items"}
)


def check_lipsum(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> None:
    """``lipsum()``: n paragraphs of up to ``max`` words of up to 12 letters."""
    del html, min
    budget().predict(_int(n, 5) * _int(max, 100) * 13, "'lipsum()'")
