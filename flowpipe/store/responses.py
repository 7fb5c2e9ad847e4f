"""Typed records on top of a CacheStore: generations, image bytes, uploads.

Layout (all values are bytes):
    gen:<request key>        JSON CachedGeneration
    img:<sha256>             the image bytes (JPEG, or PNG where the 2026-07 API sends it)
    up:<account>:<sha256>    the mediaGenerationId of those bytes uploaded to that account

Image bytes go in before the record that points at them, so a crash between the two
leaves an orphan image, never a record without its bytes. Every read is checked
(JSON shape, SHA-256 of the bytes, JPEG or PNG markers: ``flowpipe.imagebytes``); a bad
entry is reported once
and treated as a miss, so it is re-made instead of poisoning a run.

With a remote (``flowpipe.store.remote``), a local miss is looked up there and what
is found is verified and kept locally; a new generation is written locally first,
then to the remote.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowpipe.dialects import ImageFormat
from flowpipe.errors import CacheEntryError
from flowpipe.imagebytes import sniff_image
from flowpipe.store.cache import INDEX_NAME, CacheStore, DiskCache, default_cache_dir

if TYPE_CHECKING:
    from flowpipe.store.remote import RemoteCache
    from flowpipe.store.repair import IndexRepair

__all__ = [
    "CacheReport",
    "CachedGeneration",
    "CachedImage",
    "ResponseCache",
    "existing_cache",
    "sha256_hex",
    "verify_cache",
]

log = logging.getLogger("flowpipe.cache")


@contextlib.contextmanager
def existing_cache(folder: Path | None) -> Iterator[ResponseCache | None]:
    """The cache in ``folder`` (None: the default one) for a look that sends nothing
    (``plan``, ``why``, ``diff``); None when it has no index yet, so looking never
    creates a cache folder or an empty index."""
    folder = Path(folder) if folder is not None else default_cache_dir()
    if not (folder / INDEX_NAME).exists():
        yield None
        return
    store = DiskCache(folder)
    try:
        yield ResponseCache(store)
    finally:
        store.close()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256: the name of image bytes everywhere in flowpipe."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedImage:
    """One image of a generation, named by the SHA-256 of its bytes.

    ``media_generation_id`` is "" when the answer gave none (an upscale): a later
    reference uploads the bytes. ``format`` is what the bytes are (``N.jpg``/``N.png``).
    """

    sha256: str
    seed: int | None
    media_generation_id: str
    width: int
    height: int
    format: ImageFormat = "jpeg"

    @property
    def extension(self) -> str:
        """``jpg`` or ``png``: the file name ending of the image."""
        return "png" if self.format == "png" else "jpg"


@dataclass(frozen=True, slots=True)
class CachedGeneration:
    """What a successful request made, and how (kept so a re-run reports the same).

    ``request`` is the request the key was made of (``planner.node_request``: prompt,
    model, seed, references as ``sha256:``), so ``flowpipe diff`` can say what changed
    between a lock's keys and today's; None in entries written before it was kept.
    """

    images: tuple[CachedImage, ...]
    account: str
    model_used: str
    attempts: int
    generation_seconds: float
    request: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.request is None:
            del data["request"]
        else:
            data["request"] = dict(self.request)
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CachedGeneration:
        """Parse a record; ValueError/TypeError/KeyError on any malformed field."""
        return cls.from_dict(json.loads(raw))

    @classmethod
    def from_dict(cls, data: Any) -> CachedGeneration:
        """Build a record from parsed JSON; ValueError/TypeError/KeyError if malformed."""
        images = tuple(
            CachedImage(
                sha256=str(img["sha256"]),
                seed=None if img["seed"] is None else int(img["seed"]),
                media_generation_id=str(img["media_generation_id"]),
                width=int(img["width"]),
                height=int(img["height"]),
                format=_format(img.get("format", "jpeg")),  # records before PNG are JPEG
            )
            for img in data["images"]
        )
        if not images:
            raise ValueError("generation without images")
        return cls(
            images=images,
            account=str(data["account"]),
            model_used=str(data["model_used"]),
            attempts=int(data["attempts"]),
            generation_seconds=float(data["generation_seconds"]),
            request=data["request"] if isinstance(data.get("request"), dict) else None,
        )


def _format(value: object) -> ImageFormat:
    if value == "png":
        return "png"
    if value == "jpeg":
        return "jpeg"
    raise ValueError(f"unknown image format {value!r}")


class ResponseCache:
    """Generations and uploads by content-addressed key, with integrity checks."""

    def __init__(self, store: CacheStore, *, remote: RemoteCache | None = None) -> None:
        self.store = store
        self.remote = remote
        self._reported: set[str] = set()
        self.corrupt_entries = 0

    def read_entry(self, key: str) -> bytes | None:
        """``store.get``, with an unreadable entry reported and treated as a miss."""
        try:
            return self.store.get(key)
        except CacheEntryError as exc:
            self._corrupt(key, exc.message)
            return None

    def _corrupt(self, key: str, why: str) -> None:
        if key not in self._reported:
            self._reported.add(key)
            self.corrupt_entries += 1
            log.warning("cache entry %s is corrupt (%s); treating it as a miss", key[:40], why)

    def get_generation(
        self, key: str, *, remote: bool = True
    ) -> tuple[CachedGeneration, list[bytes]] | None:
        """The record and every image's bytes, or None if absent or damaged.

        A local miss asks the remote (unless ``remote`` is False), which stores what it
        finds here after checking it.
        """
        raw = self.read_entry(f"gen:{key}")
        if raw is None and remote and self.remote is not None and self.remote.fetch(key, self):
            raw = self.read_entry(f"gen:{key}")
        if raw is None:
            return None
        try:
            gen = CachedGeneration.from_json(raw)
        except (ValueError, TypeError, KeyError) as exc:
            self._corrupt(f"gen:{key}", f"unreadable record: {exc}")
            return None
        blobs: list[bytes] = []
        for img in gen.images:
            data = self.get_image(img.sha256, remote=remote)  # reports damaged bytes itself
            if data is None and not self.store.contains(f"img:{img.sha256}"):
                self._corrupt(f"gen:{key}", f"image {img.sha256[:12]} is missing")
            if data is None:
                return None
            blobs.append(data)
        return gen, blobs

    async def pull(self, key: str) -> None:
        """Bring ``key`` from the remote into this cache if it is there and not here,
        awaiting the remote's loop: for callers on an event loop (the run's), which a
        ``get_generation`` miss would block for the round trip."""
        if self.remote is not None and not self.store.contains(f"gen:{key}"):
            await self.remote.fetch_async(key, self)

    def peek_generation(self, key: str) -> tuple[str, ...] | None:
        """The image hashes of a stored generation whose images are all stored, without
        reading their bytes (``flowpipe plan`` asks this of every node; a run reads and
        checks the bytes with ``get_generation``)."""
        raw = self.read_entry(f"gen:{key}")
        if raw is None:
            return None
        try:
            gen = CachedGeneration.from_json(raw)
        except (ValueError, TypeError, KeyError):
            return None
        shas = tuple(img.sha256 for img in gen.images)
        return shas if all(self.store.contains(f"img:{sha}") for sha in shas) else None

    def put_generation(self, key: str, gen: CachedGeneration, blobs: list[bytes]) -> None:
        """Store a new generation here, then on the remote (which never raises)."""
        self.store_local(key, gen, blobs)
        if self.remote is not None:
            self.remote.push(key, gen, blobs)

    def store_local(self, key: str, gen: CachedGeneration, blobs: list[bytes]) -> None:
        """Images first, then the record that points at them; this cache only."""
        for img, data in zip(gen.images, blobs, strict=True):
            self.put_image(data, sha=img.sha256)
        self.store.put(f"gen:{key}", gen.to_json())

    def get_image(self, sha: str, *, remote: bool = True) -> bytes | None:
        """The bytes named ``sha``; a local miss or damaged entry asks the remote."""
        data = self.read_entry(f"img:{sha}")
        if data is not None and (sha256_hex(data) != sha or sniff_image(data) is None):
            self._corrupt(f"img:{sha}", "bytes do not match their hash or are not a whole image")
            data = None
        if data is None and remote and self.remote is not None:
            return self.remote.fetch_image(sha, self)
        return data

    def put_image(self, data: bytes, *, sha: str | None = None) -> str:
        sha = sha or sha256_hex(data)
        if not self.store.contains(f"img:{sha}") or self.get_image(sha, remote=False) is None:
            self.store.put(f"img:{sha}", data)
        return sha

    def get_upload(self, account: str, sha: str) -> str | None:
        raw = self.read_entry(f"up:{account}:{sha}")
        return raw.decode("utf-8", "replace") if raw else None

    def put_upload(self, account: str, sha: str, media_generation_id: str) -> None:
        self.store.put(f"up:{account}:{sha}", media_generation_id.encode())


@dataclass(frozen=True, slots=True)
class CacheReport:
    """What ``flowpipe cache verify`` found."""

    generations: int
    images: int
    uploads: int
    corrupt: tuple[str, ...]
    rebuilt: IndexRepair | None = None  # set when a damaged index was rebuilt first


def verify_cache(cache: ResponseCache, *, repair: bool = False) -> CacheReport:
    """Read every entry back and check it; with ``repair``, delete the bad ones."""
    counts = {"gen": 0, "img": 0, "up": 0}
    corrupt: list[str] = []
    for key in list(cache.store.keys()):
        kind, _, rest = key.partition(":")
        if kind not in counts:
            corrupt.append(key)
            continue
        counts[kind] += 1
        if kind == "gen":
            ok = cache.get_generation(rest) is not None
        elif kind == "img":
            ok = cache.get_image(rest) is not None
        else:
            ok = bool(cache.read_entry(key))
        if not ok:
            corrupt.append(key)
    if repair:
        for key in corrupt:
            cache.store.delete(key)
    return CacheReport(counts["gen"], counts["img"], counts["up"], tuple(corrupt))
