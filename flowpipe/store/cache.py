"""Key-value stores for responses and image bytes: bytes in, bytes out, never pickle.

The runner sees only the ``CacheStore`` contract, so a test can swap the disk for a
dict and a contract test suite runs against every implementation.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import diskcache

from flowpipe.errors import CacheError

__all__ = ["CacheStore", "DiskCache", "MemoryCache", "default_cache_dir"]


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
            raise CacheError("cache entry is a pickle; flowpipe never writes those")
        return super().fetch(mode, filename, value, read)


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
            )
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(
                f"cannot open cache folder {self.folder}: {exc}",
                hint="set FLOWPIPE_CACHE_DIR to a writable folder",
            ) from exc

    def __repr__(self) -> str:
        return f"DiskCache({str(self.folder)!r})"

    def get(self, key: str) -> bytes | None:
        try:
            value = self._cache.get(key, default=None, retry=True)
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot read cache entry {key[:24]}: {exc}") from exc
        except CacheError:
            return None
        return value if isinstance(value, bytes) else None

    def put(self, key: str, value: bytes) -> None:
        try:
            self._cache.set(key, bytes(value), retry=True)
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(
                f"cannot write cache entry {key[:24]}: {exc}",
                hint="check free disk space and permissions of the cache folder",
            ) from exc

    def contains(self, key: str) -> bool:
        try:
            return key in self._cache
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot read cache: {exc}") from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(KeyError):
            self._cache.delete(key, retry=True)

    def keys(self) -> Iterator[str]:
        return (k for k in self._cache.iterkeys() if isinstance(k, str))

    def clear(self) -> int:
        """Delete every entry; return how many there were."""
        try:
            return int(self._cache.clear(retry=True))
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot clear cache folder {self.folder}: {exc}") from exc

    def close(self) -> None:
        self._cache.close()
