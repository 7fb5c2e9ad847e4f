"""Thumbnails for the contact sheet, cached in ``OUT/.thumbs/`` by image SHA-256.

A thumbnail is named by the hash of the image it shows, so equal bytes share one
file and a re-run (cached or not) re-encodes nothing it already has: the fully cached
re-run of 2,000 images only lists the folder once. Thumbnails that no image of the
manifest names any more are removed, so the folder holds what the report shows.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image, UnidentifiedImageError

from flowpipe.errors import OutputError
from flowpipe.store.outputs import atomic_write

__all__ = [
    "THUMB_DIR",
    "THUMB_WIDTH",
    "Thumb",
    "ensure_thumbnails",
    "image_sha",
    "safe_image_path",
    "thumb_size",
]

THUMB_DIR = ".thumbs"
THUMB_WIDTH = 384
_QUALITY = 82
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Thumb:
    """A thumbnail file, relative to the output folder (POSIX separators)."""

    rel: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class _Job:
    sha256: str
    source: Path
    size: tuple[int, int] | None


def safe_image_path(rel: str) -> PurePosixPath | None:
    """The manifest's relative image path, or None if it could leave the folder."""
    path = PurePosixPath(rel)
    if path.is_absolute() or not path.parts or any(p in ("..", "") for p in path.parts):
        return None
    return path


def thumb_size(width: int, height: int) -> tuple[int, int]:
    """Thumbnail size for an image: THUMB_WIDTH wide, never enlarged."""
    if width <= THUMB_WIDTH:
        return width, height
    return THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))


def _make(job: _Job, folder: Path) -> Thumb | None:
    """Decode at reduced size (JPEG draft mode), resize, write atomically."""
    try:
        with Image.open(job.source) as im:
            size = thumb_size(*im.size)
            im.draft("RGB", size)
            small = im.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=_QUALITY, progressive=True)
    try:
        atomic_write(folder / f"{job.sha256}.jpg", buffer.getvalue())
    except OutputError as exc:
        raise OutputError(f"{folder}: cannot write a thumbnail: {exc.message}") from None
    return Thumb(f"{THUMB_DIR}/{job.sha256}.jpg", *size)


def _existing_size(job: _Job, path: Path) -> tuple[int, int] | None:
    if job.size is not None:
        return thumb_size(*job.size)
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError):
        return None


def ensure_thumbnails(
    out: Path, images: Iterable[tuple[str, Path, tuple[int, int] | None]], *, write: bool = True
) -> Mapping[str, Thumb | None]:
    """Make the missing thumbnails; map each image's SHA-256 to its thumbnail.

    ``images`` gives (sha256, source file, (width, height) if known). A hash that is
    not 64 lowercase hex digits (see ``image_sha``) gets none. None marks an image
    that cannot be read. With ``write=False`` (the review server, which writes only
    the picks file) nothing is made or removed: images without one get None.
    """
    folder = out / THUMB_DIR
    try:
        if write:
            folder.mkdir(exist_ok=True)
        present = {e.name for e in os.scandir(folder) if e.is_file()} if folder.is_dir() else set()
    except OSError as exc:
        raise OutputError(f"{folder}: cannot be used for thumbnails: {exc}") from None
    jobs: dict[str, _Job] = {}
    for sha, source, size in images:
        if _SHA256.fullmatch(sha):
            jobs.setdefault(sha, _Job(sha, source, size))
    result: dict[str, Thumb | None] = {}
    todo: list[_Job] = []
    for sha, job in jobs.items():
        name = f"{sha}.jpg"
        dims = _existing_size(job, folder / name) if name in present else None
        if dims is None:
            todo.append(job)
        else:
            result[sha] = Thumb(f"{THUMB_DIR}/{name}", *dims)
    if not write:
        result.update((job.sha256, None) for job in todo)
        return result
    if todo:
        workers = max(1, min(len(todo), os.cpu_count() or 1, 8))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for job, thumb in zip(todo, pool.map(lambda j: _make(j, folder), todo), strict=True):
                result[job.sha256] = thumb
    wanted = {f"{sha}.jpg" for sha in jobs}
    for name in present - wanted:
        if name.startswith(".tmp-") or _SHA256.fullmatch(name.removesuffix(".jpg")):
            (folder / name).unlink(missing_ok=True)
    return result


def image_sha(sha: str, source: Path) -> str:
    """The hash the thumbnail of ``source`` is named by (recomputed if not hex)."""
    if _SHA256.fullmatch(sha.lower()):
        return sha.lower()
    try:
        with source.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return sha
