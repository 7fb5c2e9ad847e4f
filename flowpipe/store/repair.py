"""Checking a cache folder, and repairing or clearing one whose index is damaged.

The cache is diskcache: an SQLite index (``cache.db``) that maps keys to values, small
values inside it and large ones (images) as ``XX/YY/*.val`` files beside it. A stray
write, a full disk during a checkpoint or a copied half-file can damage the index; the
value files usually survive. ``rebuild_index``:

1. sets the damaged index aside in ``damaged-<UTC time>/`` (nothing is deleted);
2. copies every row it can still read into a new index: first from the file as it is,
   else from a copy with a rebuilt 100-byte SQLite header (an overwritten header is the
   common damage, and the rows behind it are intact), scanning forwards and backwards
   so one bad page does not hide the rows after it;
3. re-indexes every value file no row names that is a JPEG or PNG, as
   ``img:<sha256>`` (what the cache calls image bytes), and moves any other orphan
   into the set-aside folder.

Generation records whose rows are lost are re-made by the next run; their images are
kept. ``clear_folder`` empties a folder even when its index cannot be opened.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import struct
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from flowpipe.errors import CacheError, CacheIndexError
from flowpipe.imagebytes import sniff_image
from flowpipe.store.cache import INDEX_NAME, THUMBS_NAME, DiskCache
from flowpipe.store.responses import (
    CacheReport,
    ResponseCache,
    sha256_hex,
    verify_cache,
)

__all__ = ["IndexRepair", "clear_folder", "rebuild_index", "verify_folder"]

_SIDE_FILES = ("-wal", "-shm", "-journal")
_MODE_RAW, _MODE_BINARY = 1, 2  # diskcache's value modes: in the row, in a file
_PAGE_SIZES = (4096, 1024, 2048, 8192, 16384, 32768, 65536, 512)
_SCANS = tuple(
    f"SELECT rowid, key, raw, mode, filename, value FROM Cache ORDER BY rowid {order}"  # noqa: S608
    for order in ("ASC", "DESC")
)


@dataclass(frozen=True, slots=True)
class IndexRepair:
    """What ``rebuild_index`` saved, and where the damaged index now is."""

    aside: Path
    rows: int
    images: int
    unrecovered: int


def verify_folder(folder: Path, *, repair: bool = False) -> CacheReport:
    """Check the index and every entry; with ``repair``, rebuild a damaged index first
    and delete the entries that are still bad (what ``flowpipe cache verify`` runs)."""
    try:
        return _verify(folder, repair=repair)
    except CacheIndexError:
        if not repair:
            raise
    rebuilt = rebuild_index(folder)
    return replace(_verify(folder, repair=True), rebuilt=rebuilt)


def _verify(folder: Path, *, repair: bool) -> CacheReport:
    store = DiskCache(folder)
    try:
        store.check_index()
        return verify_cache(ResponseCache(store), repair=repair)
    finally:
        store.close()


def rebuild_index(folder: Path) -> IndexRepair:
    """Set the damaged index aside and build a new one from what can still be read."""
    folder = Path(folder)
    aside = folder / f"damaged-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    try:
        aside.mkdir(mode=0o700)
        for name in _index_files(folder):
            (folder / name).rename(aside / name)
    except OSError as exc:
        raise CacheError(f"cannot set the damaged index of {folder} aside: {exc}") from exc
    values = set(_value_files(folder))
    rows = _salvage_rows(aside / INDEX_NAME)
    store = DiskCache(folder)
    saved = images = 0
    try:
        used: set[Path] = set()
        for key, mode, filename, value in rows:
            data = _row_bytes(folder, mode, filename, value)
            if data is None:
                continue
            store.put(key, data)
            saved += 1
            if filename:
                used.add(folder / filename)
        for path in sorted(values - used):
            with contextlib.suppress(OSError):
                data = path.read_bytes()
                if sniff_image(data) is not None:
                    key = f"img:{sha256_hex(data)}"
                    if not store.contains(key):
                        store.put(key, data)
                        images += 1
                    used.add(path)
    finally:
        store.close()
    unrecovered = _tidy(folder, values, used, aside)
    return IndexRepair(aside=aside, rows=saved, images=images, unrecovered=unrecovered)


def clear_folder(folder: Path) -> tuple[int, bool]:
    """Empty the cache in ``folder``: (entries or files deleted, whether the index was
    damaged). A damaged index is deleted with every value file and set-aside index.
    The reports' shared thumbnails go too (output folders keep their own)."""
    folder = Path(folder)
    try:
        shutil.rmtree(folder / THUMBS_NAME, ignore_errors=True)
        store = DiskCache(folder)
        try:
            return store.clear(), False
        finally:
            store.close()
    except CacheIndexError:
        pass
    removed = 0
    try:
        for name in _index_files(folder):
            (folder / name).unlink()
        for path in _value_files(folder):
            path.unlink()
            removed += 1
        for old in folder.glob("damaged-*"):
            shutil.rmtree(old)
        _remove_empty_value_dirs(folder)
    except OSError as exc:
        raise CacheError(f"cannot clear cache folder {folder}: {exc}") from exc
    DiskCache(folder).close()  # a new, empty index
    return removed, True


def _index_files(folder: Path) -> list[str]:
    return [n for n in (INDEX_NAME, *(INDEX_NAME + s for s in _SIDE_FILES))
            if (folder / n).exists()]


def _value_files(folder: Path) -> list[Path]:
    """diskcache's value files: ``XX/YY/NAME.val`` under the folder (hex XX and YY)."""
    return [p for p in folder.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*.val") if p.is_file()]


def _remove_empty_value_dirs(folder: Path) -> None:
    for top in folder.glob("[0-9a-f][0-9a-f]"):
        for sub in top.glob("[0-9a-f][0-9a-f]"):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def _tidy(folder: Path, values: set[Path], used: set[Path], aside: Path) -> int:
    """Old value files: copied ones go, orphans move into the set-aside folder."""
    orphans = 0
    for path in values:
        with contextlib.suppress(OSError):
            if path in used:
                path.unlink()
            else:
                target = aside / "values" / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                path.rename(target)
                orphans += 1
    _remove_empty_value_dirs(folder)
    return orphans


Row = tuple[str, int, str | None, bytes | None]


def _salvage_rows(db: Path) -> list[Row]:
    """Every row of the Cache table that SQLite can still read, as is or with a new header."""
    rows = _read_rows(db)
    if rows is not None:
        return rows
    with tempfile.TemporaryDirectory(prefix="flowpipe-salvage-") as tmp:
        copy = Path(tmp) / INDEX_NAME
        data = db.read_bytes()
        for suffix in _SIDE_FILES:
            side = db.with_name(db.name + suffix)
            if side.exists():
                shutil.copyfile(side, copy.with_name(copy.name + suffix))
        wal = (db.with_name(db.name + "-wal")).exists()
        for page in _PAGE_SIZES:
            if len(data) < page or len(data) % page:
                continue
            copy.write_bytes(_header(len(data), page, wal=wal) + data[100:])
            rows = _read_rows(copy)
            if rows is not None:
                return rows
    return []


def _header(size: int, page: int, *, wal: bool) -> bytes:
    """A plausible SQLite header for a file of ``size`` bytes in pages of ``page``."""
    head = bytearray(100)
    head[:16] = b"SQLite format 3\0"
    struct.pack_into(">H", head, 16, page if page < 65536 else 1)
    head[18] = head[19] = 2 if wal else 1
    head[21:24] = bytes((64, 32, 32))
    struct.pack_into(">IIIIIII", head, 24, 1, size // page, 0, 0, 1, 4, 0)
    struct.pack_into(">I", head, 56, 1)  # UTF-8
    struct.pack_into(">II", head, 92, 1, 3_040_001)
    return bytes(head)


def _read_rows(db: Path) -> list[Row] | None:
    """Rows readable from ``db`` (None if it cannot be read as a database at all)."""
    found: dict[int, Row] = {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        try:
            con.execute("SELECT 1 FROM Cache LIMIT 1").fetchall()
        except sqlite3.Error:
            return None
        for query in _SCANS:  # a bad page stops a scan: come from both ends
            with contextlib.suppress(sqlite3.Error):
                for rowid, key, raw, mode, filename, value in con.execute(query):
                    if isinstance(key, str) and raw and mode in (_MODE_RAW, _MODE_BINARY):
                        found[rowid] = (key, mode, filename, value)
    finally:
        con.close()
    return [found[r] for r in sorted(found)]


def _row_bytes(folder: Path, mode: int, filename: str | None, value: bytes | None
               ) -> bytes | None:
    if mode == _MODE_RAW:
        return bytes(value) if isinstance(value, bytes) else None
    if not filename:
        return None
    path = (folder / filename).resolve()
    if not path.is_relative_to(folder.resolve()):
        return None  # a damaged row must not make us read outside the cache folder
    try:
        return path.read_bytes()
    except OSError:
        return None
