"""Fixtures for the report tests: fabricated output folders (see fabricate.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowpipe.report import write_report

from .fabricate import Fabricated, fabricate_output


@pytest.fixture
def fabricated(tmp_path: Path) -> Fabricated:
    """A fresh realistic output folder (no report yet)."""
    return fabricate_output(tmp_path / "out")


@pytest.fixture(scope="session")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabricated]:
    """One output folder with its report written, shared by read-only tests."""
    fab = fabricate_output(tmp_path_factory.mktemp("reported") / "out")
    write_report(fab.out)
    yield fab


@pytest.fixture
def artifacts_dir() -> Path:
    """test-artifacts/ at the repository root (gitignored)."""
    folder = Path(__file__).resolve().parents[2] / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder
