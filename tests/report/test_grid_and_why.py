"""A ratio x model grid as one table, and why each node was made, from a real run.

The folder is made by ``flowpipe.run`` on the embedded simulator: once, then again after
a prompt edit upstream (with markup in it, which must stay text). The HTML is checked
here; ``test_browser_grid.py`` opens the same folder in Chromium.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

import flowpipe

RECIPE = """\
version: 1
name: teapot
x-shot: &shot {count: 1, seed: 42}
assets: {brand: brand.png}
steps:
  hero:
    <<: *shot
    model: imagen-4
    prompt: "a ceramic teapot on a white sweep, soft light"
    style: assets.brand
  grid:
    <<: *shot
    matrix:
      aspectRatio: [landscape, portrait, square]
      model: [imagen-4, nano-banana]
    prompt: "the teapot on a kitchen table, {{ aspectRatio }} framing"
    context: [hero.0]
  swatch:
    <<: *shot
    prompt: a glaze swatch
"""
EDITED = "a ceramic teapot on a white sweep, <b>hard</b> light"


def make_grid_run(folder: Path) -> Path:
    """Run the recipe, edit the hero's prompt, run again; returns the output folder."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (20, 120, 90)).save(buffer, "PNG")
    (folder / "brand.png").write_bytes(buffer.getvalue())
    recipe = folder / "teapot.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    out = folder / "out"
    options = {"out": out, "lock": True, "report": True, "backend": "sim",
               "cache_dir": folder / "cache"}
    assert flowpipe.run(recipe, **options).ok
    recipe.write_text(RECIPE.replace("a ceramic teapot on a white sweep, soft light", EDITED),
                      encoding="utf-8")
    assert flowpipe.run(recipe, **options).ok
    return out


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_grid_run(tmp_path_factory.mktemp("grid"))


def _section(html: str, step: str) -> str:
    start = html.index(f"</span>{step}</h2>")
    return html[start:].split("<section", 1)[0]


def test_the_ratio_by_model_grid_is_one_three_by_two_table(grid_run: Path) -> None:
    html = (grid_run / "report.html").read_text()
    grid = _section(html, "grid")
    assert grid.count("<table") == 1 and 'data-grid="3x2"' in grid
    assert re.findall(r'<th scope="col">([^<]*)</th>', grid) == ["imagen-4", "nano-banana"]
    assert re.findall(r'<th scope="row">([^<]*)</th>', grid) == [
        "landscape", "portrait", "square"
    ]
    assert "<span>aspectRatio</span> ↓ <span>model</span> →" in grid
    assert grid.count('class="card fi"') == 6


def test_each_node_says_why_it_was_made(grid_run: Path) -> None:
    html = (grid_run / "report.html").read_text()
    hero = _section(html, "hero")
    assert 'data-why="changed"' in hero
    assert ("<li>prompt: &#34;…sweep, soft light&#34; → &#34;…sweep, &lt;b&gt;hard&lt;/b&gt; "
            "light&#34;</li>") in hero
    grid = _section(html, "grid")
    assert grid.count('data-why="changed"') == 6
    assert grid.count("<li>upstream image changed: context hero.0 (") == 6
    assert "data-why" not in _section(html, "swatch")  # cached, and as locked: nothing to say
