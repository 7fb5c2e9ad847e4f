"""Thumbnails for the contact sheet, in ``OUT/.thumbs/`` by image SHA-256.

A thumbnail is named by the hash of the image it shows, so equal bytes share one
file and a re-run (cached or not) re-encodes nothing it already has: the fully cached
re-run of 2,000 images only lists the folder once. Thumbnails that no image of the
manifest names any more are removed, so the folder holds what the report shows.

With a shared folder (``CACHE/thumbs/``, given by the run) thumbnails are also kept
across output folders: a missing one is hard-linked (copied where the file system
cannot link) from there into ``OUT/.thumbs/``, and a new one is drawn there first, so
a cached re-run into a new folder draws nothing. The report still only points into
its own folder. Only a thumbnail of bytes that really have the hash goes into the
shared folder (the file is hashed as it is drawn), so one folder's stale manifest
cannot give another folder's report a wrong picture.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image, UnidentifiedImageError

from flowpipe.errors import OutputError
from flowpipe.store.outputs import atomic_write
from flowpipe.store.provenance import api_sha256
from flowpipe.store.responses import sha256_hex

__all__ = [
    "SHARED_NAME",
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
SHARED_NAME = f"w{THUMB_WIDTH}-q{_QUALITY}"
"""The subfolder of the shared folder: another size or quality is another set."""
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMP = re.compile(r"^(\.tmp-|\.[0-9a-f]{64}\.jpg\.[a-z0-9_]+\.tmp$)")  # what a killed write left


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


def _draw(data: bytes) -> tuple[bytes, tuple[int, int]] | None:
    """The thumbnail of image bytes: decoded at reduced size (JPEG draft mode), resized."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = thumb_size(*im.size)
            im.draft("RGB", size)
            small = im.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=_QUALITY, progressive=True)
    return buffer.getvalue(), size


def _write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OutputError as exc:
        raise OutputError(f"{path.parent}: cannot write a thumbnail: {exc.message}") from None


def _make(job: _Job, folder: Path, shared: Path | None) -> Thumb | None:
    """Draw the thumbnail of ``job``; into the shared folder first when its bytes have
    the hash it is named by, and from there into ``folder``."""
    try:
        data = job.source.read_bytes()
    except OSError:
        return None
    drawn = _draw(data)
    if drawn is None:
        return None
    thumb, size = drawn
    name = f"{job.sha256}.jpg"
    # only bytes that have the hash they are named by go to the shared folder (hashed only
    # when there is one: a run's images carry a packet, so the packet-less hash first)
    if shared is not None and (api_sha256(data) == job.sha256 or sha256_hex(data) == job.sha256):
        try:
            atomic_write(shared / name, thumb)
            _place(shared / name, folder / name)
        except (OSError, OutputError):  # the shared folder failed us: this folder only
            pass
        else:
            return Thumb(f"{THUMB_DIR}/{name}", *size)
    _write(folder / name, thumb)
    return Thumb(f"{THUMB_DIR}/{name}", *size)


def _place(source: Path, target: Path) -> None:
    """Put ``source`` at ``target``: a hard link where the file system allows, else a copy.

    Either way through a temp name and a rename, so ``target`` is whole or absent.
    """
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            os.link(source, temp)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(source, temp)
        os.replace(temp, target)
    except OSError:
        temp.unlink(missing_ok=True)
        raise


def _from_shared(job: _Job, folder: Path, shared: Path) -> Thumb | None:
    """The thumbnail of ``job`` from the shared folder, placed in ``folder``; None if absent."""
    name = f"{job.sha256}.jpg"
    source = shared / name
    try:
        if not source.stat().st_size:
            return None
    except OSError:
        return None
    dims = _existing_size(job, source)
    if dims is None:
        return None
    try:
        _place(source, folder / name)
    except OSError:
        return None
    return Thumb(f"{THUMB_DIR}/{name}", *dims)


def _existing_size(job: _Job, path: Path) -> tuple[int, int] | None:
    if job.size is not None:
        return thumb_size(*job.size)
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError):
        return None


def ensure_thumbnails(
    out: Path, images: Iterable[tuple[str, Path, tuple[int, int] | None]], *, write: bool = True,
    shared: Path | None = None,
) -> Mapping[str, Thumb | None]:
    """Make the missing thumbnails; map each image's SHA-256 to its thumbnail.

    ``images`` gives (sha256, source file, (width, height) if known). A hash that is
    not 64 lowercase hex digits (see ``image_sha``) gets none. None marks an image
    that cannot be read. With ``write=False`` (the review server, which writes only
    the picks file) nothing is made or removed: images without one get None.
    ``shared`` is the folder thumbnails are kept in across output folders (its
    ``SHARED_NAME`` subfolder is used); one that cannot be used is not used.
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
    store = _shared_folder(shared) if todo else None
    if store is not None:
        found = {job.sha256: _from_shared(job, folder, store) for job in todo}
        result.update((sha, thumb) for sha, thumb in found.items() if thumb is not None)
        todo = [job for job in todo if found[job.sha256] is None]
    if todo:
        workers = max(1, min(len(todo), os.cpu_count() or 1, 8))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            made = pool.map(lambda j: _make(j, folder, store), todo)
            for job, thumb in zip(todo, made, strict=True):
                result[job.sha256] = thumb
    wanted = {f"{sha}.jpg" for sha in jobs}
    for name in present - wanted:
        if _TEMP.match(name) or _SHA256.fullmatch(name.removesuffix(".jpg")):
            (folder / name).unlink(missing_ok=True)
    return result


def _shared_folder(shared: Path | None) -> Path | None:
    """The shared thumbnails' folder, made if need be; None when there is none to use."""
    if shared is None:
        return None
    folder = shared / SHARED_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


def image_sha(sha: str, source: Path) -> str:
    """The hash the thumbnail of ``source`` is named by (recomputed if not hex)."""
    if _SHA256.fullmatch(sha.lower()):
        return sha.lower()
    try:
        with source.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return sha
