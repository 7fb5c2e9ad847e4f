from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from flowpipe.cli import cli
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


@pytest.fixture
def run_into_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """``run_into_cache(recipe_text)``: run it on the embedded simulator with
    FLOWPIPE_CACHE_DIR set to ``tmp_path/cache`` (so ``flowpipe cache`` finds it too)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(cache))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)

    def run(recipe_text: str) -> Path:
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(recipe_text)
        result = CliRunner().invoke(
            cli, ["run", str(recipe), "-o", str(tmp_path / "out"), "--plain", "--no-report"]
        )
        assert result.exit_code == 0, result.output
        return cache

    return run
