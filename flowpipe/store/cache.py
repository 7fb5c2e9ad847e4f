"""Key-value stores for responses and image bytes: bytes in, bytes out, never pickle.

The runner sees only the ``CacheStore`` contract, so a test can swap the disk for a
dict and a contract test suite runs against every implementation. ``get`` returns None
for a key that is absent and raises ``CacheEntryError`` for one that is there but
cannot be read as bytes (a pickle, a folder where its value file should be), so the
caller can say so. A damaged SQLite index is a ``CacheIndexError`` that names the file
and the fix (flowpipe.store.repair rebuilds or clears it).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import diskcache

from flowpipe.errors import CacheEntryError, CacheError, CacheIndexError

__all__ = ["INDEX_NAME", "THUMBS_NAME", "CacheStore", "DiskCache", "MemoryCache",
           "default_cache_dir"]

INDEX_NAME = "cache.db"  # diskcache's SQLite file in the cache folder
THUMBS_NAME = "thumbs"  # the report's thumbnails by image hash, shared by output folders
SQLITE_CACHE_PAGES = 512  # per connection: 2 MB of 4 KB pages
_DAMAGE_CODES = ("SQLITE_NOTADB", "SQLITE_CORRUPT")


@runtime_checkable
class CacheStore(Protocol):
    """What the runner needs of a cache: bytes by string key."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def contains(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> Iterator[str]: ...

    def close(self) -> None: ...


class MemoryCache:
    """A dict behind the cache contract, for tests and ``--no-cache`` runs."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self._data[key] = bytes(value)

    def contains(self, key: str) -> bool:
        return key in self._data

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def keys(self) -> Iterator[str]:
        return iter(list(self._data))

    def close(self) -> None:
        """Nothing to release."""


class _RawDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache Disk that stores only bytes and refuses to unpickle anything.

    diskcache pickles any value that is not bytes/str/number and unpickles whatever
    the database says is a pickle; a cache folder must never be a way to run code.
    """

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if type(value) is not bytes:
            raise TypeError("flowpipe's cache stores bytes only")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            raise CacheEntryError("it holds a pickle; flowpipe never writes those")
        if mode == diskcache.core.MODE_TEXT:
            raise CacheEntryError("it holds text; flowpipe writes bytes only")
        try:
            return super().fetch(mode, filename, value, read)
        except FileNotFoundError:
            raise  # deleted since the row was read: diskcache treats it as a miss
        except OSError as exc:
            raise CacheEntryError(
                f"its value file {filename} cannot be read: {exc.strerror or exc}"
            ) from None


def default_cache_dir() -> Path:
    """``FLOWPIPE_CACHE_DIR``, else the platform's per-user cache folder."""
    env = os.environ.get("FLOWPIPE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "flowpipe"
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "flowpipe" / "Cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flowpipe"


class DiskCache:
    """diskcache (SQLite + files) in a folder only the user can read.

    SQLite makes concurrent processes safe; values are raw bytes, so the folder holds
    nothing that executes when read.
    """

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.folder.chmod(0o700)
            self._cache = diskcache.Cache(
                str(self.folder),
                disk=_RawDisk,
                eviction_policy="none",
                size_limit=2**62,
                statistics=False,
                # SQLite's page cache and memory map are per connection (diskcache opens
                # one per thread) and fill up to the index's size: a long run grew by
                # tens of MB. The OS caches the file anyway.
                sqlite_cache_size=SQLITE_CACHE_PAGES,
                sqlite_mmap_size=0,
            )
        except sqlite3.DatabaseError as exc:
            if _damaged(exc):
                raise self._index_error(exc) from exc
            raise self._open_error(exc) from exc
        except OSError as exc:
            raise self._open_error(exc) from exc

    def __repr__(self) -> str:
        return f"DiskCache({str(self.folder)!r})"

    @property
    def index(self) -> Path:
        """The SQLite file that maps keys to values."""
        return self.folder / INDEX_NAME

    @property
    def thumbs(self) -> Path:
        """Where reports keep thumbnails by image hash, for every output folder."""
        return self.folder / THUMBS_NAME

    def _open_error(self, exc: BaseException) -> CacheError:
        return CacheError(
            f"cannot open cache folder {self.folder}: {exc}",
            hint="set FLOWPIPE_CACHE_DIR to a writable folder",
        )

    def _index_error(self, exc: BaseException) -> CacheIndexError:
        return CacheIndexError(
            f"the cache index {self.index} is damaged ({exc})",
            hint="repair the cache to rebuild the index from the stored values, or clear it "
            "to start empty",
        )

    def _error(self, exc: BaseException, what: str, hint: str | None = None) -> CacheError:
        if isinstance(exc, sqlite3.DatabaseError) and _damaged(exc):
            return self._index_error(exc)
        return CacheError(f"{what}: {exc}", hint=hint)

    def get(self, key: str) -> bytes | None:
        try:
            value = self._cache.get(key, default=None, retry=True)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc, f"cannot read cache entry {key[:24]}") from exc
        if value is None or isinstance(value, bytes):
            return value
        raise CacheEntryError(f"it holds a {type(value).__name__}, not bytes")

    def put(self, key: str, value: bytes) -> None:
        try:
            self._cache.set(key, bytes(value), retry=True)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(
                exc, f"cannot write cache entry {key[:24]}",
                hint="check free disk space and permissions of the cache folder",
            ) from exc

    def contains(self, key: str) -> bool:
        try:
            return key in self._cache
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc, "cannot read cache") from exc

    def delete(self, key: str) -> None:
        try:
            self._cache.delete(key, retry=True)
        except KeyError:
            pass
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc, f"cannot delete cache entry {key[:24]}") from exc

    def keys(self) -> Iterator[str]:
        try:
            for key in self._cache.iterkeys():
                if isinstance(key, str):
                    yield key
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc, "cannot list the cache") from exc

    def check_index(self) -> None:
        """Raise CacheIndexError unless SQLite's ``quick_check`` finds the index whole."""
        try:
            con = sqlite3.connect(self.index)
            try:
                rows = con.execute("PRAGMA quick_check").fetchall()
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, f"cannot check {self.index}") from exc
        if rows != [("ok",)]:
            first = " ".join(str(rows[0][0] if rows else "no answer").split())[:160]
            raise self._index_error(sqlite3.DatabaseError(f"SQLite's quick_check: {first}"))

    def clear(self) -> int:
        """Delete every entry; return how many there were."""
        try:
            return int(self._cache.clear(retry=True))
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc, f"cannot clear cache folder {self.folder}") from exc

    def close(self) -> None:
        self._cache.close()


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """True when SQLite says the file is not a database or is malformed."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    text = str(exc)
    return name.startswith(_DAMAGE_CODES) or "malformed" in text or "not a database" in text
