"""An output folder made by a real run on the embedded simulator, with hostile strings."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import flowpipe
from flowpipe.store.manifest import Manifest, read_manifest

XSS = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=1\">"

RECIPE = f"""
version: 1
name: review-demo
defaults: {{model: imagen-4, count: 3}}
steps:
  hero:
    prompt: 'a shoe on a ridge {XSS}'
  poster:
    prompt: "poster of the shoe"
    context: [hero.pick]
    count: 1
  side:
    matrix: {{angle: ['front', '{XSS}']}}
    prompt: "side view {{{{ angle }}}}"
    count: 2
"""


@dataclass
class Made:
    """A recipe, its output folder and the manifest the run wrote."""

    recipe: Path
    out: Path
    manifest: Manifest

    def sha(self, node: str, index: int) -> str:
        entry = next(n for n in self.manifest.nodes if n.id == node)
        return entry.images[index].sha256


@pytest.fixture(scope="session")
def made_template(tmp_path_factory: pytest.TempPathFactory) -> Made:
    root = tmp_path_factory.mktemp("review-made")
    recipe = root / "demo.yaml"
    recipe.write_text(textwrap.dedent(RECIPE).lstrip(), encoding="utf-8")
    result = flowpipe.run(recipe, out=root / "out", backend="sim", cache_dir=root / "cache",
                          report=True)
    assert result.exit_code == 5, result.message  # poster waits for a pick
    return Made(recipe, root / "out", read_manifest(root / "out"))


@pytest.fixture
def made(made_template: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Made:
    """A private copy, so each test writes its own picks file; the current folder is the
    copy's, as for a person who runs ``flowpipe review out`` beside the recipe."""
    root = tmp_path / "made"
    shutil.copytree(made_template.recipe.parent, root, ignore=shutil.ignore_patterns("cache"))
    monkeypatch.chdir(root)
    return Made(root / "demo.yaml", root / "out", made_template.manifest)

