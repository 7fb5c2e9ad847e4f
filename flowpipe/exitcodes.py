"""Process exit codes: the command line's mapping from how a run ended, or what went wrong.

Library objects carry no exit codes; the CLI asks this table, and ``RunResult.exit_code``
reports the code the CLI would exit with (DESIGN section 9 lists them).
"""

from __future__ import annotations

from flowpipe.errors import (
    FlowpipeError,
    FrozenCacheMissError,
    RecipeError,
    RecipeErrors,
    StopRunError,
    UsageError,
)

__all__ = [
    "FAILED",
    "FROZEN",
    "INTERRUPTED",
    "OK",
    "STOPPED",
    "USAGE",
    "WAITING",
    "for_error",
    "for_outcome",
]

OK = 0
FAILED = 1
USAGE = 2
STOPPED = 3
FROZEN = 4
WAITING = 5  # nothing failed, but some nodes wait for a reviewer's pick (flowpipe review)
INTERRUPTED = 130

# A frozen miss is no outcome: it raises before the run (``for_error``), so run.json and
# RunResult never say "frozen".
_OUTCOMES = {"done": OK, "failed": FAILED, "stopped": STOPPED, "waiting": WAITING,
             "interrupted": INTERRUPTED}


def for_error(error: FlowpipeError) -> int:
    """The exit code for an error that ended a command."""
    if isinstance(error, UsageError | RecipeError | RecipeErrors):
        return USAGE
    if isinstance(error, StopRunError):
        return STOPPED
    if isinstance(error, FrozenCacheMissError):
        return FROZEN
    return FAILED


def for_outcome(outcome: str) -> int:
    """The exit code for a run's outcome (``done``, ``failed``, ``stopped``, ...)."""
    return _OUTCOMES.get(outcome, FAILED)
