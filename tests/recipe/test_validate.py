from __future__ import annotations

import pytest

from flowpipe.errors import RecipeError, RecipeErrors, SchemaError
from flowpipe.recipe.load import load_text
from flowpipe.recipe.validate import describe_path, validate_document

GOOD = "version: 1\nname: ok\nsteps:\n  hero:\n    prompt: a shoe\n"


def errors_of(text: str) -> list[str]:
    try:
        validate_document(load_text(text, file="r.yaml"))
    except RecipeErrors as exc:
        return [str(e) for e in exc.errors]
    except RecipeError as exc:
        return [str(exc)]
    return []


def test_valid_document_passes() -> None:
    assert errors_of(GOOD) == []


def test_all_problems_are_reported_at_once_in_file_order() -> None:
    text = (
        "version: 1\nname: x\ndefaults:\n  cuont: 2\nsteps:\n  hero:\n    prompt: a\n"
        "    count: 9\n  poster:\n    promt: b\n"
    )
    found = errors_of(text)
    assert found == [
        "r.yaml:4:3: defaults: unknown key 'cuont' (did you mean 'count'?)",
        "r.yaml:8:12: step 'hero': count: must be an integer from 1 to 4 (got 9)",
        "r.yaml:9:3: step 'poster': missing key 'prompt' (every step needs a prompt)",
        "r.yaml:10:5: step 'poster': unknown key 'promt' (did you mean 'prompt'?)",
    ]


def test_unknown_key_without_a_near_match_lists_choices() -> None:
    (line,) = errors_of(GOOD + "    zzz: 1\n")
    assert "unknown key 'zzz' (choose from 'prompt', 'description', 'model'" in line


def test_huge_values_are_cut_to_one_short_line() -> None:
    (line,) = errors_of(GOOD + "    count: '" + "x\\n" * 500 + "'\n")
    assert len(line) < 300
    assert "\n" not in line


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "recipe"),
        (("steps", "hero", "matrix", "angle", 0), "step 'hero': matrix.angle[0]"),
        (("defaults", "count"), "defaults: count"),
        (("accounts", 1), "accounts: [1]"),
    ],
)
def test_describe_path(path: tuple[str | int, ...], text: str) -> None:
    assert describe_path(path) == text


def test_single_problem_raises_schema_error_itself() -> None:
    with pytest.raises(SchemaError):
        validate_document(load_text(GOOD.replace("version: 1", "version: 3")))


@pytest.mark.parametrize(
    "step_id", ["CON", "con", "Nul", "aux", "PRN", "COM1", "com9", "LPT1", "lpt9", "COM0", "LPT0"]
)
def test_windows_device_names_are_refused_as_step_ids(step_id: str) -> None:
    """A step id is an output folder; Windows cannot create one named after a device."""
    found = errors_of(f"version: 1\nname: x\nsteps:\n  {step_id}:\n    prompt: a\n")
    assert len(found) == 1 and found[0].startswith(f"r.yaml:4:3: steps: '{step_id}': "), found
    assert "Windows device names" in found[0]


@pytest.mark.parametrize("step_id", ["CONSOLE", "con_", "com10", "LPT", "nul-1", "auxiliary"])
def test_names_near_the_devices_are_fine(step_id: str) -> None:
    assert errors_of(f"version: 1\nname: x\nsteps:\n  {step_id}:\n    prompt: a\n") == []
