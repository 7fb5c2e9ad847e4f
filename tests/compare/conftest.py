"""An edited recipe run before and after, sharing one cache."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

import flowpipe

XSS = "<script>window.__xss=1</script>"
RECIPE = f"""
version: 1
name: diffdemo
defaults: {{model: imagen-4, count: 2}}
steps:
  hero:
    prompt: "a trail shoe on a ridge {XSS}"
    seed: 5
  poster:
    prompt: "poster of the shoe"
    context: [hero.0]
    count: 1
  side:
    prompt: "unrelated still life"
    count: 1
"""


def _run(recipe: Path, out: Path, cache: Path) -> None:
    result = flowpipe.run(recipe, out=out, backend="sim", cache_dir=cache, lock=True)
    assert result.ok, result.message


@pytest.fixture
def edited(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A recipe run into before/, then its poster prompt edited and run into after/."""
    return make_edited(tmp_path)


@pytest.fixture(scope="module")
def edited_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """The same, made once per module (before a browser's event loop starts)."""
    return make_edited(tmp_path_factory.mktemp("edited"))


def make_edited(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    recipe = tmp_path / "demo.yaml"
    cache = tmp_path / "cache"
    recipe.write_text(textwrap.dedent(RECIPE).lstrip(), encoding="utf-8")
    _run(recipe, tmp_path / "before", cache)
    shutil.copy(recipe.with_name("demo.lock.json"), tmp_path / "committed.lock.json")
    recipe.write_text(recipe.read_text().replace("poster of the shoe",
                                                 "bold poster of the red shoe"))
    _run(recipe, tmp_path / "after", cache)
    return recipe, tmp_path / "before", tmp_path / "after", cache


