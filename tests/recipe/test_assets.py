from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from flowpipe.errors import AssetError, RecipeError, RecipeErrors
from flowpipe.planner import build_plan
from flowpipe.recipe.assets import MAX_ASSET_BYTES, sniff_mime
from flowpipe.store.provenance import Provenance, embed

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


def test_a_flowpipe_output_used_as_an_asset_is_known_by_its_api_bytes(
    write_recipe: WriteRecipe, tmp_path: Path
) -> None:
    """Its packet names the flowpipe version: an upgrade rewrites the file, never the key
    of the recipe that uses it (review A-15)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="JPEG")
    api = buf.getvalue()
    made = Provenance(recipe="r", node="hero", image=0, prompt="p", model="imagen-4",
                      seed=1, aspect_ratio="landscape", request_key="k" * 64,
                      image_sha256=hashlib.sha256(api).hexdigest(), flowpipe_version="0.1.0")
    (tmp_path / "assets").mkdir(exist_ok=True)
    target = tmp_path / "assets" / "made.jpg"
    recipe = write_recipe(RECIPE.format(path="assets/made.jpg"))
    keys = []
    for version in ("0.1.0", "0.2.0"):
        target.write_bytes(embed(api, dataclasses.replace(made, flowpipe_version=version)))
        plan = build_plan(recipe)
        assert plan.assets["pic"].sha256 == hashlib.sha256(api).hexdigest()
        keys.append(plan.nodes["hero"].provisional_key)
    assert keys[0] == keys[1]


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
