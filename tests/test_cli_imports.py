"""What each quick command imports: only what it needs (the start of a command is its
imports, so `--help` and `validate` leave the heavy libraries alone).

Each command runs in a fresh interpreter that prints ``sys.modules`` when it ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = """
import sys
sys.argv = ["flowpipe", *sys.argv[1:]]
from flowpipe.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
modules = sorted(sys.modules)
import json  # after the snapshot: the probe's own import does not count
print(json.dumps({"code": code, "modules": modules}))
"""
#: Never needed to print help or to check a recipe.
HEAVY = ("asyncio", "aiohttp", "rich", "PIL", "diskcache", "sqlite3", "flowpipe.engine",
         "flowpipe.store", "flowpipe.sim", "flowpipe.report", "flowpipe.why")


def _loaded(*args: str) -> tuple[int, set[str]]:
    out = subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def _roots(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(f"{n}.") for m in modules))


def test_help_loads_no_library_beyond_click() -> None:
    code, modules = _loaded("--help")
    assert code == 0
    assert "click" in modules and "flowpipe.cli" in modules  # the probe sees what loads
    assert _roots(modules, (*HEAVY, "jinja2", "jsonschema", "yaml", "json", "logging",
                            "flowpipe.planner", "flowpipe.recipe", "flowpipe.events")) == []


@pytest.mark.parametrize("recipe", ["examples/ci-smoke.yaml", "examples/campaign.yaml"])
def test_validate_of_a_good_recipe_loads_no_jsonschema_and_no_engine(recipe: str) -> None:
    code, modules = _loaded("validate", recipe)
    assert code == 0
    assert {"yaml", "flowpipe.planner"} <= modules
    assert _roots(modules, (*HEAVY, "jsonschema")) == []


def test_validate_of_a_recipe_the_schema_refuses_loads_jsonschema_for_its_messages() -> None:
    code, modules = _loaded("validate", "tests/recipe/broken/count-five.yaml")
    assert code == 2
    assert "jsonschema" in modules
    assert _roots(modules, HEAVY) == []
