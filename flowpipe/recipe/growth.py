"""What an operation that can outgrow its inputs would build, worked out before it runs.

Padding (``center``, ``ljust``, ``zfill``, ``indent``), printf and ``str.format`` widths,
joins, replacements, ``translate``, ``to_bytes``, ``batch``/``slice`` counts and
``tojson`` indents can each turn a few characters of template into gigabytes. Each
function here computes the size of the result from the arguments alone and hands it to
the render's ``Budget`` (flowpipe.recipe.limits), which refuses it if it is too large.
Sizes are upper bounds: a refused operation may have built a little less.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flowpipe.recipe.limits import Budget, LimitError, figure, weight

__all__ = [
    "CHEAP_FILTERS",
    "FILTER_CHECKS",
    "check_call",
    "check_format",
    "check_printf",
]


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
                             f"{figure(cap)} characters")
        total += int(digits or 0)
    return total


def _ints_within(args: Iterable[Any], cap: int, what: str) -> None:
    for arg in args:
        if _int(arg) > cap:
            raise LimitError(f"{what}: a width of {figure(arg)} is over the limit of {figure(cap)}")


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


def _pad(cap: int, s: Any, width: Any = 0, *_: Any) -> int:
    return max(len(s), _int(width))


def _expandtabs(cap: int, s: Any, tabsize: Any = 8) -> int:
    tabs: int = s.count("\t" if isinstance(s, str) else b"\t")
    return len(s) + tabs * max(_int(tabsize, 8), 0)


def _join(sep: Any, items: list[Any], cap: int) -> int:
    """Each item's weight counted up to ``cap`` only: one over it refuses the join anyway."""
    return sum(weight(i, cap) for i in items) + max(len(items) - 1, 0) * len(sep)


def _replace(cap: int, s: Any, old: Any = "", new: Any = "", count: Any = -1) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(s)
    hits = len(s) + 1 if not old else s.count(old)
    if _int(count, -1) >= 0:
        hits = min(hits, _int(count))
    return len(s) + hits * max(len(new) - len(old), 0)


def _translate(cap: int, s: Any, table: Any = None, *_: Any) -> int:
    if isinstance(table, Mapping):
        longest = max((weight(v, cap) for v in table.values()), default=1)
        return len(s) * max(longest, 1)
    return len(s)


#: Per method, the size of its result from (the text limit, the string, its arguments).
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
            current.predict(_join(owner, items, current.limits.max_text), what)
            return (items, *args[1:])
        grow = _GROWING.get(name)
        if grow is not None:
            current.predict(grow(current.limits.max_text, owner, *args, *kwargs.values()), what)
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
    b.predict(_replace(b.limits.max_text, str(s), str(old), str(new),
                       -1 if count is None else count), "filter 'replace'")
    return (s, old, new, count), {}


def _f_join(b: Budget, value: Any, d: Any = "", attribute: Any = None) -> Any:
    items = value if isinstance(value, str) else list(value)
    if attribute is None:
        b.predict(_join(str(d), list(items), b.limits.max_text), "filter 'join'")
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
     "round", "items"}
)
