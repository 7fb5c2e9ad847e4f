"""The CacheStore contract, run against every implementation."""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
from pathlib import Path

import pytest

from flowpipe.errors import CacheEntryError, CacheError
from flowpipe.store import CacheStore, DiskCache, default_cache_dir


def test_missing_key_is_none(store: CacheStore) -> None:
    assert store.get("nope") is None
    assert not store.contains("nope")


def test_put_get_roundtrip_bytes(store: CacheStore) -> None:
    store.put("k", b"\x00\xffvalue")
    assert store.get("k") == b"\x00\xffvalue"
    assert store.contains("k")
    assert list(store.keys()) == ["k"]


def test_overwrite_and_delete(store: CacheStore) -> None:
    store.put("k", b"one")
    store.put("k", b"two")
    assert store.get("k") == b"two"
    store.delete("k")
    store.delete("k")  # deleting twice is fine
    assert store.get("k") is None


def test_large_values_roundtrip(store: CacheStore) -> None:
    big = os.urandom(300_000)  # above diskcache's in-database limit: stored as a file
    store.put("big", big)
    assert store.get("big") == big


def test_disk_cache_refuses_non_bytes(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "c")
    with pytest.raises(TypeError):
        cache.put("k", "text")  # type: ignore[arg-type]
    cache.close()


def test_disk_cache_never_unpickles(tmp_path: Path) -> None:
    """A pickle planted in the database is not executed: reading it says it is damaged."""
    folder = tmp_path / "c"
    cache = DiskCache(folder)
    cache.put("k", b"x")
    cache.close()
    db = sqlite3.connect(folder / "cache.db")
    db.execute(
        "UPDATE Cache SET mode = 4, value = ? WHERE key = 'k'",
        (pickle.dumps({"evil": True}),),
    )
    db.commit()
    db.close()
    cache = DiskCache(folder)
    with pytest.raises(CacheEntryError, match="pickle"):
        cache.get("k")
    cache.close()


def test_a_folder_where_a_value_file_should_be_is_a_damaged_entry(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    cache = DiskCache(folder)
    cache.put("k", os.urandom(100_000))  # stored as a file
    (value,) = folder.glob("*/*/*.val")
    value.unlink()
    value.mkdir()
    with pytest.raises(CacheEntryError, match="value file"):
        cache.get("k")
    cache.close()


def test_disk_cache_folder_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    DiskCache(folder).close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_disk_cache_unusable_folder_is_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match="cannot open cache folder"):
        DiskCache(blocker / "c")


def test_two_handles_share_one_folder(tmp_path: Path) -> None:
    a, b = DiskCache(tmp_path / "c"), DiskCache(tmp_path / "c")
    a.put("k", b"v")
    assert b.get("k") == b"v"
    a.close()
    b.close()


def test_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("FLOWPIPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "flowpipe"
