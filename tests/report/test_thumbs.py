"""Thumbnails: sized, named by hash, re-used, and safe about paths."""

from __future__ import annotations

import hashlib
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from flowpipe.report.thumbs import (
    THUMB_WIDTH,
    ensure_thumbnails,
    image_sha,
    safe_image_path,
    thumb_size,
)


def _jpeg(path: Path, size: tuple[int, int]) -> str:
    buf = BytesIO()
    Image.new("RGB", size, (200, 80, 40)).save(buf, "JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


@pytest.mark.parametrize(
    ("rel", "safe"),
    [
        ("a/b/0.jpg", True),
        ("../x.jpg", False),
        ("/etc/passwd", False),
        ("a/../../x", False),
        ("", False),
        ("a=1,b=2/0.jpg", True),
    ],
    ids=["plain", "parent", "absolute", "inner-parent", "empty", "variant"],
)
def test_safe_image_path(rel: str, safe: bool) -> None:
    assert (safe_image_path(rel) is not None) is safe


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1408, 768), (384, 209)), ((768, 1408), (384, 704)), ((200, 100), (200, 100))],
    ids=["landscape", "portrait", "small-not-enlarged"],
)
def test_thumb_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert thumb_size(*size) == expected


def test_makes_reuses_and_marks_unreadable(tmp_path: Path) -> None:
    sha = _jpeg(tmp_path / "a/0.jpg", (1408, 768))
    bad = tmp_path / "a/1.jpg"
    bad.write_bytes(b"nope")
    bad_sha = "f" * 64
    thumbs = ensure_thumbnails(tmp_path, [(sha, tmp_path / "a/0.jpg", None), (bad_sha, bad, None)])
    thumb = thumbs[sha]
    assert thumb is not None and thumb.rel == f".thumbs/{sha}.jpg"
    with Image.open(tmp_path / thumb.rel) as im:
        assert im.size == (THUMB_WIDTH, 209) == (thumb.width, thumb.height)
    assert thumbs[bad_sha] is None
    mtime = (tmp_path / thumb.rel).stat().st_mtime_ns
    again = ensure_thumbnails(tmp_path, [(sha, tmp_path / "a/0.jpg", (1408, 768))])
    assert again[sha] == thumb
    assert (tmp_path / thumb.rel).stat().st_mtime_ns == mtime


def test_equal_images_share_one_thumbnail(tmp_path: Path) -> None:
    sha = _jpeg(tmp_path / "a/0.jpg", (800, 600))
    _jpeg(tmp_path / "b/0.jpg", (800, 600))
    ensure_thumbnails(
        tmp_path, [(sha, tmp_path / "a/0.jpg", None), (sha, tmp_path / "b/0.jpg", None)]
    )
    assert [p.name for p in (tmp_path / ".thumbs").iterdir()] == [f"{sha}.jpg"]


def test_image_sha_recomputes_only_when_not_hex(tmp_path: Path) -> None:
    sha = _jpeg(tmp_path / "x.jpg", (10, 10))
    assert image_sha("garbage", tmp_path / "x.jpg") == sha
    assert image_sha("A" * 64, tmp_path / "x.jpg") == "a" * 64
