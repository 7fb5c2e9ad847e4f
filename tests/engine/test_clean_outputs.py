"""The output folder holds exactly what the manifest lists (issue 13, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import flowpipe
from flowpipe.cli import cli
from flowpipe.store.cache import DiskCache
from flowpipe.store.provenance import strip
from flowpipe.store.responses import ResponseCache, sha256_hex

from .conftest import CHAIN


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    return CliRunner()


def _run(runner: CliRunner, recipe: Path, out: Path, *extra: str) -> Result:
    result = runner.invoke(cli, ["run", str(recipe), "-o", str(out), "--plain", *extra])
    assert result.exit_code == 0, result.output
    return result


def _files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*.jpg") if ".thumbs" not in p.parts}


def _listed(out: Path) -> set[str]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {img["path"] for node in manifest["nodes"] for img in node["images"]}


def _without_banner(text: str) -> str:
    return text[: text.index("  banner:")]


def test_a_removed_steps_files_and_folders_are_gone_after_the_next_run(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _run(runner, write_recipe(CHAIN), out)
    assert (out / "banner" / "default" / "0.jpg").is_file()
    mine = out / "banner" / "notes.txt"  # not flowpipe's: it stays, and so does its folder
    mine.write_text("keep me")
    result = _run(runner, write_recipe(_without_banner(CHAIN)), out)
    assert "flowpipe: removed 1 image file no node lists any more" in result.stderr
    assert not (out / "banner" / "default").exists()
    assert mine.read_text() == "keep me"
    assert _files(out) == _listed(out)
    assert result.stderr.splitlines()[-1] == f"flowpipe: report: {out / 'report.html'}"
    assert json.loads((out / "run.json").read_text())["summary"]["removed_files"] == 1


def test_a_lowered_count_removes_the_extra_images_of_a_node_still_in_the_recipe(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    """The closing line does not say the node left the recipe: only its image 1 did."""
    out = tmp_path / "out"
    _run(runner, write_recipe(CHAIN), out, "--no-report")
    one = CHAIN.replace("    aspectRatio: portrait\n", "    aspectRatio: portrait\n    count: 1\n")
    assert one != CHAIN
    result = _run(runner, write_recipe(one), out, "--no-report")
    assert "flowpipe: removed 1 image file no node lists any more" in result.stderr
    assert not (out / "poster" / "default" / "1.jpg").exists()
    assert (out / "poster" / "default" / "0.jpg").is_file()


def test_the_only_copy_goes_into_the_cache_before_its_file_is_removed(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _run(runner, write_recipe(CHAIN), out, "--no-report")
    banner = strip((out / "banner" / "default" / "0.jpg").read_bytes())  # the API's bytes
    _run(runner, write_recipe(_without_banner(CHAIN)), out, "--no-report",
         "--cache-dir", str(tmp_path / "other-cache"))  # a cache that never saw the banner
    assert not (out / "banner").exists()
    store = DiskCache(tmp_path / "other-cache")
    try:
        assert ResponseCache(store).get_image(sha256_hex(banner)) == banner
    finally:
        store.close()


def test_a_listed_file_edited_since_is_not_flowpipes_any_more(
    runner: CliRunner, write_recipe, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _run(runner, write_recipe(CHAIN), out, "--no-report")
    edited = out / "banner" / "default" / "0.jpg"
    edited.write_bytes(b"retouched by hand")
    result = _run(runner, write_recipe(_without_banner(CHAIN)), out, "--no-report")
    assert edited.read_bytes() == b"retouched by hand"
    assert "removed" not in result.stderr


def test_without_a_cache_folder_the_only_copy_stays(write_recipe, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    out = tmp_path / "out"
    assert flowpipe.run(write_recipe(CHAIN), out=out, use_cache=False).ok
    again = flowpipe.run(write_recipe(_without_banner(CHAIN)), out=out, use_cache=False)
    assert again.ok and again.removed == 0
    assert (out / "banner" / "default" / "0.jpg").is_file()
