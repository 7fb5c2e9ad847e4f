"""Fixtures for recipe tests: write a recipe (and its assets) into a temporary folder."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

WriteRecipe = Callable[[str], Path]


def png_bytes(color: tuple[int, int, int] = (0, 128, 128)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def write_recipe(tmp_path: Path) -> WriteRecipe:
    """Write dedented YAML to tmp_path/recipe.yaml (with assets/logo.png beside it)."""
    (tmp_path / "assets").mkdir(exist_ok=True)
    (tmp_path / "assets" / "logo.png").write_bytes(png_bytes())

    def write(text: str) -> Path:
        path = tmp_path / "recipe.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
