from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from flowpipe.store import CacheStore, DiskCache, MemoryCache


def make_jpeg(
    color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (64, 48)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CacheStore]:
    """Every CacheStore implementation, so the contract tests run against each."""
    s: CacheStore = MemoryCache() if request.param == "memory" else DiskCache(tmp_path / "c")
    yield s
    s.close()
