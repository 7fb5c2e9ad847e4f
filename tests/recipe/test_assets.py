from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from flowpipe.errors import AssetError, RecipeError, RecipeErrors
from flowpipe.planner import build_plan
from flowpipe.recipe.assets import MAX_ASSET_BYTES, sniff_mime

from .conftest import WriteRecipe, png_bytes

RECIPE = """
version: 1
name: assets
assets:
  pic: {path}
steps:
  hero: {{prompt: a, context: [assets.pic]}}
"""


def problems(path: Path) -> list[RecipeError]:
    try:
        build_plan(path)
    except RecipeErrors as exc:
        return exc.errors
    except RecipeError as exc:
        return [exc]
    return []


def test_png_and_jpeg_are_hashed(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="JPEG")
    (tmp_path / "assets" / "photo.jpg").write_bytes(buf.getvalue())
    plan = build_plan(write_recipe(RECIPE.format(path="assets/photo.jpg")))
    asset = plan.assets["pic"]
    assert asset.mime == "image/jpeg"
    assert asset.sha256 == hashlib.sha256(buf.getvalue()).hexdigest()
    assert asset.path == (tmp_path / "assets" / "photo.jpg").resolve()
    assert asset.size == len(buf.getvalue())


@pytest.mark.parametrize(
    ("head", "mime"),
    [(png_bytes()[:8], "image/png"), (b"\xff\xd8\xff\xe0", "image/jpeg"), (b"GIF89a", None),
     (b"", None)],
    ids=["png", "jpeg", "gif", "empty"],
)
def test_sniff_mime(head: bytes, mime: str | None) -> None:
    assert sniff_mime(head) == mime


def test_symlink_leaving_the_folder_is_refused(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    outside.write_bytes(png_bytes())
    (tmp_path / "assets" / "link.png").symlink_to(outside)
    (error,) = problems(write_recipe(RECIPE.format(path="assets/link.png")))
    assert isinstance(error, AssetError)
    assert "leaves the recipe's folder" in str(error)
    assert error.location is not None and error.location.line == 4


def test_symlink_inside_the_folder_is_fine(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    (tmp_path / "assets" / "alias.png").symlink_to(tmp_path / "assets" / "logo.png")
    assert build_plan(write_recipe(RECIPE.format(path="assets/alias.png"))).assets["pic"]


def test_too_large_file_is_refused(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    big = tmp_path / "assets" / "big.png"
    with big.open("wb") as f:
        f.write(png_bytes())
        f.truncate(MAX_ASSET_BYTES + 1)  # sparse: costs no disk
    (error,) = problems(write_recipe(RECIPE.format(path="assets/big.png")))
    assert "the API takes at most 20 MB" in str(error)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/hostname", "must be relative"),
        ("C:/logo.png", "must be relative"),
        ("../outside.png", "leaves the recipe's folder"),
        ("assets/../../x.png", "leaves the recipe's folder"),
        ("assets/nope.png", "file not found"),
        ("assets", "cannot read it"),
        ("'bad\\0name'", "not a usable file path"),
    ],
    ids=["absolute", "windows-drive", "dotdot", "sneaky-dotdot", "missing", "folder", "nul"],
)
def test_bad_paths(write_recipe: WriteRecipe, path: str, reason: str) -> None:
    text = RECIPE.format(path=path).replace("'bad\\0name'", '"bad\\0name"')
    (error,) = problems(write_recipe(text))
    assert reason in str(error)


def test_empty_file_says_so(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    (tmp_path / "assets" / "empty.png").write_bytes(b"")
    (error,) = problems(write_recipe(RECIPE.format(path="assets/empty.png")))
    assert "not a PNG or JPEG image (the file is empty)" in str(error)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(write_recipe: WriteRecipe, tmp_path: Path) -> None:
    locked = tmp_path / "assets" / "locked.png"
    locked.write_bytes(png_bytes())
    locked.chmod(0)
    (error,) = problems(write_recipe(RECIPE.format(path="assets/locked.png")))
    assert "cannot read it" in str(error)
