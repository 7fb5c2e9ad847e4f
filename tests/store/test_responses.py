"""Typed records over the cache: integrity checks make damage a miss, never a bad image."""

from __future__ import annotations

import logging

import pytest

from flowpipe.store import CachedGeneration, CachedImage, CacheStore, ResponseCache, sha256_hex
from flowpipe.store.responses import verify_cache

from .conftest import make_jpeg


def _generation(blobs: list[bytes]) -> CachedGeneration:
    return CachedGeneration(
        images=tuple(
            CachedImage(sha256=sha256_hex(b), seed=7, media_generation_id=f"id{i}", width=64,
                        height=48)
            for i, b in enumerate(blobs)
        ),
        account="a@example.com",
        model_used="imagen-4",
        attempts=1,
        generation_seconds=12.5,
    )


def test_generation_roundtrip(store: CacheStore) -> None:
    cache = ResponseCache(store)
    blobs = [make_jpeg((1, 2, 3)), make_jpeg((9, 9, 9))]
    gen = _generation(blobs)
    cache.put_generation("key1", gen, blobs)
    got = cache.get_generation("key1")
    assert got is not None
    assert got[0] == gen
    assert got[1] == blobs


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda s: s.put("gen:key1", b"{not json"), id="garbage-json"),
        pytest.param(lambda s: s.put("gen:key1", b'{"images": []}'), id="wrong-shape"),
        pytest.param(
            lambda s: s.put(next(k for k in list(s.keys()) if k.startswith("img:")), b"\xff\xd8tr"),
            id="truncated-image",
        ),
        pytest.param(
            lambda s: s.delete(next(k for k in list(s.keys()) if k.startswith("img:"))),
            id="missing-image",
        ),
    ],
)
def test_damaged_entries_are_misses_reported_once(
    store: CacheStore, damage, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ResponseCache(store)
    blobs = [make_jpeg()]
    cache.put_generation("key1", _generation(blobs), blobs)
    damage(store)
    with caplog.at_level(logging.WARNING, logger="flowpipe.cache"):
        assert cache.get_generation("key1") is None
        assert cache.get_generation("key1") is None
    assert cache.corrupt_entries == 1
    assert len([r for r in caplog.records if "corrupt" in r.message]) == 1


def test_put_image_repairs_damaged_bytes(store: CacheStore) -> None:
    cache = ResponseCache(store)
    data = make_jpeg()
    sha = cache.put_image(data)
    store.put(f"img:{sha}", b"garbage")
    cache.put_image(data)
    assert cache.get_image(sha) == data


def test_uploads_by_account_and_hash(store: CacheStore) -> None:
    cache = ResponseCache(store)
    cache.put_upload("a@x", "abc", "user:1-email:61-image:1")
    assert cache.get_upload("a@x", "abc") == "user:1-email:61-image:1"
    assert cache.get_upload("b@x", "abc") is None


def test_verify_finds_and_repairs_corruption(store: CacheStore) -> None:
    cache = ResponseCache(store)
    blobs = [make_jpeg()]
    cache.put_generation("good", _generation(blobs), blobs)
    store.put("gen:bad", b"\x00garbage")
    report = verify_cache(cache)
    assert report.generations == 2
    assert report.corrupt == ("gen:bad",)
    verify_cache(cache, repair=True)
    assert verify_cache(cache).corrupt == ()
    assert cache.get_generation("good") is not None


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_png_images_are_kept_and_a_cut_png_is_a_miss(store: CacheStore) -> None:
    """The 2026-07 API may answer PNG: a whole one is an image, a truncated one is not."""
    cache = ResponseCache(store)
    whole = _png()
    sha = cache.put_image(whole)
    assert cache.get_image(sha) == whole
    cut = whole[:-6]
    store.put(f"img:{sha256_hex(cut)}", cut)
    assert cache.get_image(sha256_hex(cut)) is None
