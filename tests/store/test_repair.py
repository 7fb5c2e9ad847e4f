"""A damaged cache index (cache.db): named with its path, rebuilt, cleared, never a traceback."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowpipe.cli import cli
from flowpipe.errors import CacheIndexError
from flowpipe.store import DiskCache
from flowpipe.store.repair import verify_folder

RECIPE = """version: 1
name: tiny
defaults: {count: 2}
steps:
  a: {prompt: "a small boat"}
  b: {prompt: "a large ship", count: 1}
"""
PAGE = 4096  # SQLite's default page size, which diskcache keeps


def damage_header(cache: Path) -> None:
    """What a stray write at the start of the file does: 'file is not a database'."""
    with (cache / "cache.db").open("r+b") as fh:
        fh.write(b"GARBAGE GARBAGE GARBAGE")


def damage_pages(cache: Path) -> None:
    """Every page after the first overwritten: 'database disk image is malformed'."""
    db = cache / "cache.db"
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.seek(PAGE)
        fh.write(os.urandom(size - PAGE))


DAMAGE = {"header": damage_header, "pages": damage_pages}


@pytest.fixture
def filled(run_into_cache: Callable[[str], Path]) -> Path:
    cache = run_into_cache(RECIPE)
    db = sqlite3.connect(cache / "cache.db")  # everything into cache.db, none in its WAL
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return cache


def counts(cache: Path) -> tuple[int, int, int]:
    report = verify_folder(cache)
    assert report.corrupt == () and report.rebuilt is None
    return report.generations, report.images, report.uploads


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_index_is_named_with_what_to_do(filled: Path, damage: str) -> None:
    DAMAGE[damage](filled)
    with pytest.raises(CacheIndexError) as caught:
        store = DiskCache(filled)
        try:  # damaged pages may only show when an entry is read
            list(store.keys())
        finally:
            store.close()
    text = str(caught.value)
    assert f"the cache index {filled / 'cache.db'} is damaged" in text
    assert "repair the cache" in text and "clear it" in text  # the CLI names the commands
    assert "writable" not in text  # not the hint for a read-only folder


def test_repair_rebuilds_a_damaged_header_without_losing_an_entry(filled: Path) -> None:
    before = counts(filled)
    damage_header(filled)
    result = CliRunner().invoke(cli, ["cache", "verify", "--repair"])
    assert result.exit_code == 0, result.output
    assert "rebuilt the damaged index" in result.output
    assert counts(filled) == before == (2, 3, 0)
    (aside,) = filled.glob("damaged-*/cache.db")
    assert aside.read_bytes().startswith(b"GARBAGE")


def test_repair_of_unreadable_pages_keeps_every_stored_image(filled: Path) -> None:
    store = DiskCache(filled)
    images = {k: store.get(k) for k in list(store.keys()) if k.startswith("img:")}
    store.close()
    damage_pages(filled)
    result = CliRunner().invoke(cli, ["cache", "verify", "--repair"])
    assert result.exit_code == 0, result.output
    store = DiskCache(filled)
    try:
        kept = {k: store.get(k) for k in images}
    finally:
        store.close()
    stored_as_files = [k for k, v in images.items() if v is not None and len(v) > 2**15]
    assert stored_as_files, "the test needs images big enough to be files"
    for key in stored_as_files:
        assert kept[key] == images[key]
    assert counts(filled)[1] >= len(stored_as_files)
    assert not [p for p in filled.rglob("*.val") if p.parent.parent.parent == filled
                and not _referenced(filled, p)]


def _referenced(cache: Path, value: Path) -> bool:
    db = sqlite3.connect(cache / "cache.db")
    try:
        rel = value.relative_to(cache).as_posix()
        return db.execute("SELECT 1 FROM Cache WHERE filename = ?", (rel,)).fetchone() is not None
    finally:
        db.close()


@pytest.mark.parametrize("damage", DAMAGE)
def test_verify_without_repair_says_what_to_do(filled: Path, damage: str) -> None:
    DAMAGE[damage](filled)
    result = CliRunner().invoke(cli, ["cache", "verify"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(f"flowpipe: the cache index {filled / 'cache.db'} is damaged")
    assert "--repair" in result.stderr


@pytest.mark.parametrize("damage", DAMAGE)
def test_clear_always_works(filled: Path, damage: str) -> None:
    DAMAGE[damage](filled)
    result = CliRunner().invoke(cli, ["cache", "clear", "--yes"])
    assert result.exit_code == 0, result.output
    assert "damaged" in result.output
    assert counts(filled) == (0, 0, 0)
    assert not list(filled.rglob("*.val"))
