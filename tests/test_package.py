"""The package's public face: sorted, complete exports and one exception tree."""

from __future__ import annotations

import importlib
import inspect
from typing import get_args

import pytest

import flowpipe
from flowpipe import errors, exitcodes
from flowpipe.results import Outcome


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions (and dunders last)."""
    if name.startswith("__"):
        return (3, name)
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize(
    "module", ["flowpipe", "flowpipe.api", "flowpipe.sim", "flowpipe.store", "flowpipe.engine"]
)
def test_all_is_sorted_and_importable(module: str) -> None:
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names == sorted(names, key=_isort_key)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name} is in __all__ but missing"


def test_every_error_is_exported_from_the_top() -> None:
    assert set(errors.__all__) <= set(flowpipe.__all__)


def test_every_error_derives_from_flowpipe_error_and_is_in_the_tree_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        obj = getattr(errors, name)
        if inspect.isclass(obj) and issubclass(obj, Exception):
            assert issubclass(obj, errors.FlowpipeError), name
            assert name in doc, f"{name} is missing from the tree in errors.py's docstring"


def test_token_free_str_of_api_errors() -> None:
    exc = errors.AuthError("Unauthorized", status=401, request="POST /images", hint="check it")
    assert str(exc) == "HTTP 401: POST /images: Unauthorized (check it)"
    assert exitcodes.for_error(exc) == 3


def test_every_outcome_a_run_can_have_has_an_exit_code_and_no_other() -> None:
    """A frozen miss raises before the run (exit 4 via ``for_error``): it is no outcome
    run.json could hold, so the outcome table has no entry for it (review A-14)."""
    assert set(exitcodes._OUTCOMES) == set(get_args(Outcome))
    assert exitcodes.for_error(errors.FrozenCacheMissError("miss")) == exitcodes.FROZEN
