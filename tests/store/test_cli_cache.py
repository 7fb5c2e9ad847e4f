"""`flowpipe cache info / verify / clear` on a real cache filled by a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowpipe.cli import cli
from flowpipe.store import DiskCache

RECIPE = """version: 1
name: tiny
defaults: {count: 2}
steps:
  a:
    prompt: "a small boat"
"""


@pytest.fixture
def filled(run_into_cache: Callable[[str], Path]) -> Path:
    return run_into_cache(RECIPE)


def test_info_counts_entries(filled: Path) -> None:
    result = CliRunner().invoke(cli, ["cache", "info"])
    assert result.exit_code == 0
    assert f"folder: {filled}" in result.output
    assert "generations: 1  images: 2  uploads: 0  corrupt: 0" in result.output


def test_verify_finds_then_repairs_a_damaged_image(filled: Path) -> None:
    store = DiskCache(filled)
    key = next(k for k in list(store.keys()) if k.startswith("img:"))
    store.put(key, b"\xff\xd8 not a whole jpeg")
    store.close()
    found = CliRunner().invoke(cli, ["cache", "verify"])
    assert found.exit_code == 1
    assert f"corrupt: {key}" in found.output
    repaired = CliRunner().invoke(cli, ["cache", "verify", "--repair"])
    assert repaired.exit_code == 0
    assert "deleted" in repaired.output
    assert CliRunner().invoke(cli, ["cache", "verify"]).exit_code == 0


def test_clear_asks_first_then_empties(filled: Path) -> None:
    refused = CliRunner().invoke(cli, ["cache", "clear"], input="n\n")
    assert refused.exit_code == 1  # click's Abort
    assert "generations: 1" in CliRunner().invoke(cli, ["cache", "info"]).output
    cleared = CliRunner().invoke(cli, ["cache", "clear", "--yes"])
    assert cleared.exit_code == 0
    assert "deleted 3 entries" in cleared.output
    assert "generations: 0  images: 0" in CliRunner().invoke(cli, ["cache", "info"]).output
