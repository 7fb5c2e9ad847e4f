"""Where results live: the content-addressed cache and the files people keep."""

from __future__ import annotations

from flowpipe.store.cache import CacheStore, DiskCache, MemoryCache, default_cache_dir
from flowpipe.store.outputs import OutputWriter, atomic_write
from flowpipe.store.responses import CachedGeneration, CachedImage, ResponseCache, sha256_hex

__all__ = [
    "CacheStore",
    "CachedGeneration",
    "CachedImage",
    "DiskCache",
    "MemoryCache",
    "OutputWriter",
    "ResponseCache",
    "atomic_write",
    "default_cache_dir",
    "sha256_hex",
]
