"""Every recipe in broken/ is a mistake users really make; each must fail cleanly.

The first line of each file says where the error must point and part of its reason:
``# expect: LINE:COL reason substring``; an optional second line ``# args: ...`` gives
extra command-line arguments.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowpipe.cli import cli

BROKEN = Path(__file__).parent / "broken"
CASES = sorted(BROKEN.glob("*.yaml"))
EXPECT = re.compile(r"# expect: (\d+):(\d+) (.+)")
ERROR_LINE = re.compile(r"flowpipe: (?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<reason>\S.*)")


def test_corpus_is_large() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_broken_recipe_fails_with_position_and_reason(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    expect = EXPECT.fullmatch(lines[0])
    assert expect, f"{path.name}: first line must be '# expect: LINE:COL reason'"
    args = shlex.split(lines[1].removeprefix("# args:")) if lines[1:2] and lines[1].startswith(
        "# args:"
    ) else []

    result = CliRunner().invoke(cli, ["validate", str(path), *args])

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback, only an exit
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert errors and all(ERROR_LINE.fullmatch(e) for e in errors), errors
    wanted = f"{path}:{expect[1]}:{expect[2]}: "
    assert any(wanted in e and expect[3] in e for e in errors), (wanted, expect[3], errors)
