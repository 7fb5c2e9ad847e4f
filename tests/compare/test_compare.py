"""flowpipe diff: output folders, or the committed lock against the recipe as it is now."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

import flowpipe
from flowpipe.cli import cli
from flowpipe.compare import compare, render_compare, word_diff

from .conftest import XSS


def test_word_diff_marks_deleted_and_inserted_words() -> None:
    assert word_diff("poster of the shoe", "bold poster of the red shoe") == (
        ("ins", "bold "), ("same", "poster of the "), ("ins", "red "), ("same", "shoe"))


def test_folders_show_only_the_changed_node_with_old_and_new_images(edited) -> None:
    _, before, after, cache = edited
    result = compare(before, after, cache_dir=cache)
    assert [n.id for n in result.changed()] == ["poster"]
    assert {n.id for n in result.same()} == {"hero", "side"}
    poster = result.changed()[0]
    assert [c.label for c in poster.changes] == ["prompt"]
    assert ("ins", "bold ") in poster.prompt_ops
    (old, new), = list(poster.pairs())
    assert old is not None and new is not None and old.sha256 != new.sha256
    assert old.data and new.data
    html = render_compare(result)
    assert html.count("<img src=\"data:image/jpeg;base64,") == 4  # side by side + overlay
    assert "<ins>bold </ins>" in html and "hero" in html
    assert XSS not in html  # escaped even in the folded list and labels


def test_the_committed_lock_against_the_edited_recipe_takes_old_images_from_the_cache(
    edited,
) -> None:
    recipe, before, _, cache = edited
    shutil.rmtree(before)  # the old files are gone: the cache still has them by key
    result = compare(recipe.with_name("committed.lock.json"), recipe, cache_dir=cache)
    assert [n.id for n in result.changed()] == ["poster"]
    poster = result.changed()[0]
    assert [c.label for c in poster.changes] == ["prompt"]
    (old, new), = list(poster.pairs())
    assert old is not None and old.data is not None  # from the cache, by the lock's key
    assert new is not None and new.data is not None


def test_a_node_not_made_yet_and_a_removed_node(edited) -> None:
    recipe, before, _, cache = edited
    recipe.write_text(recipe.read_text().replace("unrelated still life", "a new still life")
                      .replace("  poster:", "  poster2:").replace("context: [hero.0]",
                                                                 "context: [hero.1]"))
    result = compare(before, recipe, cache_dir=cache)
    states = {n.id: n.state for n in result.nodes}
    assert states == {"hero": "same", "poster2": "added", "side": "changed", "poster": "removed"}
    side = next(n for n in result.nodes if n.id == "side")
    (old, new), = list(side.pairs())
    assert old is not None and new is None  # not made yet: shown as such
    assert "not made yet" in render_compare(result)


def test_the_cli_writes_the_page_and_lists_what_changed(edited, tmp_path: Path) -> None:
    _, before, after, cache = edited
    target = tmp_path / "compare.html"
    result = CliRunner().invoke(cli, ["diff", str(before), str(after), "-o", str(target),
                                      "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    assert "1 changed, 2 unchanged" in result.stdout
    assert "changed poster: prompt" in result.stdout
    assert target.is_file()
    missing = CliRunner().invoke(cli, ["diff", str(tmp_path / "nope"), str(after)])
    assert missing.exit_code == 1 and "no such output folder" in missing.stderr


def test_a_lock_lists_references_in_the_requests_order(tmp_path: Path) -> None:
    """A lock's side reads its references from cached requests, by field; ordered by
    name, style came after context (and reference_10 before reference_2): a prompt edit
    alone showed `references` changed."""
    recipe, cache = tmp_path / "refs.yaml", tmp_path / "cache"
    recipe.write_text(
        "version: 1\nname: refs\ndefaults: {model: imagen-4, count: 2, seed: 1}\nsteps:\n"
        "  hero: {prompt: a shoe}\n"
        "  poster: {prompt: poster, style: hero.1, context: [hero.0]}\n")
    wide = tmp_path / "wide.yaml"
    wide.write_text(
        "version: 1\nname: wide\napi: '2026-07'\ndefaults: {count: 1, seed: 1}\nsteps:\n"
        "  tile: {prompt: a tile, matrix: {n: [a, b, c, d, e, f, g, h, i, j]}}\n"
        "  mosaic:\n    prompt: mosaic\n"
        "    context: [" + ", ".join(f"'tile[n={n}].0'" for n in "abcdefghij") + "]\n")
    for path in (recipe, wide):
        result = flowpipe.run(path, out=tmp_path / path.stem, backend="sim", cache_dir=cache,
                              lock=True)
        assert result.ok, result.message
        path.write_text(path.read_text().replace("prompt: poster", "prompt: a poster")
                        .replace("prompt: mosaic", "prompt: a mosaic"))
        diff = compare(path.with_name(f"{path.stem}.lock.json"), path, cache_dir=cache)
        changed = {n.id: [c.label for c in n.changes] for n in diff.changed()}
        assert changed == {"poster" if path is recipe else "mosaic": ["prompt"]}


def test_diff_creates_no_cache(edited, tmp_path: Path) -> None:
    """Like plan and why, diff only looks: no cache folder, no empty index, is made."""
    recipe, before, _, _ = edited
    empty, missing = tmp_path / "empty-cache", tmp_path / "no-cache"
    empty.mkdir()
    for folder in (empty, missing):
        result = compare(before, recipe, cache_dir=folder)
        assert [n.id for n in result.same()] == ["hero", "side"]  # read from the files
    assert list(empty.iterdir()) == []
    assert not missing.exists()


def test_nodes_neither_side_made_are_not_changed(tmp_path: Path) -> None:
    """Nodes waiting for review carry a provisional key in the manifest; the recipe's
    side knows no key for them: with no images on either side, nothing changed."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    recipe, cache = tmp_path / "review-loop.yaml", tmp_path / "cache"
    recipe.write_bytes((examples / "review-loop.yaml").read_bytes())  # no picks file
    result = flowpipe.run(recipe, out=tmp_path / "out", backend="sim", cache_dir=cache)
    assert result.outcome == "waiting"
    diff = compare(tmp_path / "out", recipe, cache_dir=cache)
    assert diff.changed() == ()
    assert {n.id for n in diff.same()} == {"hero", "poster", "banner"}
    recipe.write_text(recipe.read_text().replace("launch poster", "summer poster"))
    diff = compare(tmp_path / "out", recipe, cache_dir=cache)
    assert {n.id: [c.label for c in n.changes] for n in diff.changed()} == {
        "poster": ["prompt"]}
