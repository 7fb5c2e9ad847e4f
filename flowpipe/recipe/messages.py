"""Small helpers that keep every recipe error on one readable line.

Errors are printed one per line as ``file:line:col: reason``; a value quoted from the
recipe must not break that (newlines, huge strings), and a near miss should say what
was probably meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flowpipe.errors import Location, RecipeError, RecipeErrors

__all__ = [
    "ErrorList",
    "RecipeWarning",
    "WarningList",
    "did_you_mean",
    "one_line",
    "quote",
    "type_name",
]

_MAX_QUOTE = 80
T = TypeVar("T")


def one_line(text: object, limit: int = 300) -> str:
    """``text`` with control characters escaped and cut to ``limit`` characters."""
    out = str(text)
    if out.isprintable() and len(out) <= limit:
        return out
    # Not only C0: U+0085 and U+2028 end a line for str.splitlines() too.
    out = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))
    return out if len(out) <= limit else out[: limit - 1] + "…"


def quote(value: object) -> str:
    """A short, single-line, quoted rendering of a value from the recipe."""
    if isinstance(value, str):
        return repr(one_line(value, _MAX_QUOTE))
    return one_line(repr(value), _MAX_QUOTE)


def did_you_mean(word: str, choices: Iterable[str], *, listing: int = 0) -> str:
    """`` (did you mean 'x'?)`` for a close match, else optionally the first choices."""
    options = [c for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if listing and options:
        shown = ", ".join(repr(c) for c in options[:listing])
        more = f", … {len(options) - listing} more" if len(options) > listing else ""
        return f" (choose from {shown}{more})"
    return ""


def type_name(value: Any) -> str:
    """The YAML-ish name of a value's type, for 'expected X, got Y' messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


class _Lines(list[T]):
    """Collected problems, each printed line kept once."""

    def __init__(self) -> None:
        super().__init__()
        self._lines: set[str] = set()

    def add(self, item: T) -> None:
        line = str(item)
        if line not in self._lines:
            self._lines.add(line)
            self.append(item)


class ErrorList(_Lines[RecipeError]):
    """Collected RecipeErrors, deduplicated by their printed line."""

    def raise_if_any(self) -> None:
        """Raise the one error, or all of them as RecipeErrors in file order."""
        if not self:
            return
        if len(self) == 1:
            raise self[0]
        raise RecipeErrors(sorted(self, key=_order))


def _order(error: RecipeError | RecipeWarning) -> tuple[int, int]:
    loc = error.location
    return (loc.line, loc.column) if loc else (0, 0)


@dataclass(frozen=True, slots=True)
class RecipeWarning:
    """A recipe line that works but may not do what its author thinks (an old name).

    Printed like an error, ``file:line:col: warning: what (hint)``, but never fails.
    """

    message: str
    location: Location | None = None
    hint: str | None = None

    def __str__(self) -> str:
        text = f"warning: {self.message}" + (f" ({self.hint})" if self.hint else "")
        return f"{self.location}: {text}" if self.location else text


class WarningList(_Lines[RecipeWarning]):
    """Collected warnings, each printed line once, in file order when read."""

    def in_order(self) -> tuple[RecipeWarning, ...]:
        return tuple(sorted(self, key=_order))
