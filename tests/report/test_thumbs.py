"""Thumbnails: sized, named by hash, re-used, and safe about paths."""

from __future__ import annotations

import errno
import hashlib
import os
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from flowpipe.report import thumbs as thumbs_module
from flowpipe.report.thumbs import (
    SHARED_NAME,
    THUMB_WIDTH,
    Thumb,
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


class _Draws:
    """Counts the thumbnails drawn (decoded and encoded), wherever they go."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = thumbs_module._draw

        def counting(data: bytes) -> tuple[bytes, tuple[int, int]] | None:
            self.count += 1
            return real(data)

        monkeypatch.setattr(thumbs_module, "_draw", counting)


def _two_folders(tmp_path: Path) -> tuple[str, Path, Path]:
    sha = _jpeg(tmp_path / "one/a/0.jpg", (1408, 768))
    _jpeg(tmp_path / "two/a/0.jpg", (1408, 768))
    return sha, tmp_path / "one", tmp_path / "two"


def test_a_new_folder_links_the_shared_thumbnail_instead_of_drawing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha, one, two = _two_folders(tmp_path)
    shared = tmp_path / "cache" / "thumbs"
    draws = _Draws(monkeypatch)
    first = ensure_thumbnails(one, [(sha, one / "a/0.jpg", (1408, 768))], shared=shared)
    assert draws.count == 1
    second = ensure_thumbnails(two, [(sha, two / "a/0.jpg", (1408, 768))], shared=shared)
    assert draws.count == 1  # nothing drawn for the second folder
    assert first[sha] == second[sha] == Thumb(f".thumbs/{sha}.jpg", THUMB_WIDTH, 209)
    kept = shared / SHARED_NAME / f"{sha}.jpg"
    placed = two / ".thumbs" / f"{sha}.jpg"
    assert placed.is_file() and not placed.is_symlink()  # a file of the folder, not a pointer
    assert placed.stat().st_ino == kept.stat().st_ino  # a hard link on one file system
    assert [p.name for p in (two / ".thumbs").iterdir()] == [f"{sha}.jpg"]  # no temp left


def test_without_hard_links_the_thumbnail_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha, one, two = _two_folders(tmp_path)
    shared = tmp_path / "cache" / "thumbs"
    ensure_thumbnails(one, [(sha, one / "a/0.jpg", None)], shared=shared)

    def no_links(*_: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    draws = _Draws(monkeypatch)
    second = ensure_thumbnails(two, [(sha, two / "a/0.jpg", None)], shared=shared)
    assert draws.count == 0
    assert second[sha] == Thumb(f".thumbs/{sha}.jpg", THUMB_WIDTH, 209)
    kept = shared / SHARED_NAME / f"{sha}.jpg"
    placed = two / ".thumbs" / f"{sha}.jpg"
    assert placed.read_bytes() == kept.read_bytes()
    assert placed.stat().st_ino != kept.stat().st_ino


def test_bytes_that_do_not_have_their_hash_stay_out_of_the_shared_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _jpeg(tmp_path / "one/a/0.jpg", (800, 600))
    claimed = "e" * 64  # a stale manifest: the file is not what it says
    shared = tmp_path / "cache" / "thumbs"
    made = ensure_thumbnails(tmp_path / "one", [(claimed, tmp_path / "one/a/0.jpg", None)],
                             shared=shared)
    assert made[claimed] is not None and (tmp_path / "one" / made[claimed].rel).is_file()
    assert not (shared / SHARED_NAME / f"{claimed}.jpg").exists()


def test_a_shared_folder_that_cannot_be_used_is_not_used(tmp_path: Path) -> None:
    sha, one, _ = _two_folders(tmp_path)
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the folder would be")
    made = ensure_thumbnails(one, [(sha, one / "a/0.jpg", None)], shared=blocked / "thumbs")
    assert made[sha] == Thumb(f".thumbs/{sha}.jpg", THUMB_WIDTH, 209)
    assert (one / ".thumbs" / f"{sha}.jpg").is_file()
