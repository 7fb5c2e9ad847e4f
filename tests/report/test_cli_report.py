"""`flowpipe report OUT` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from flowpipe.cli import cli

from .fabricate import Fabricated


def test_report_command_writes_and_prints_the_path(fabricated: Fabricated) -> None:
    result = CliRunner().invoke(cli, ["report", str(fabricated.out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(fabricated.out / "report.html")
    assert (fabricated.out / "report.html").read_text().startswith("<!doctype html>")


def test_report_command_garbled_manifest_exits_1_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{oops")
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flowpipe: ") and "not valid JSON" in lines[0]


def test_report_command_has_help_with_example() -> None:
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    assert "flowpipe report out/campaign" in result.output
