"""The shared remote cache: read-through, write-through and verification on S3 storage.

Layout under the remote's prefix (format 1; another layout would get another folder):

    v1/gen/<request key>   {"key": KEY, "generation": {the CachedGeneration record}}
    v1/img/<sha256>        the image bytes (JPEG or PNG)
    v1/claims/<key>        a lease while a process sends that request (leases.py), then
                           {"done": true} once the record is there

Images are written with ``If-None-Match: *`` and never overwritten, except one this
process refused (replaced with ``If-Match`` on the refused version); a record is
written by whoever made its key last (a ``--refresh`` replaces it). Nothing read is
used unverified: an image must hash to its name and be a whole JPEG or PNG; a record
must name its own key and, when a lock file lists that key, exactly the lock's image hashes. A
refused object is reported in one warning line and the node is a miss.

The engine's cache seams are synchronous (``prime`` decides from the cache alone,
before anything is sent), so the async client runs on a private event loop in a
daemon thread and the sync methods wait on it. Nothing waits that need not: batches
(the prefetch before ``prime``, pushes an earlier run could not make) run there
concurrently, and a new generation's write-through runs there in the background
(noted in ``remote-pending/`` until it is done; ``aclose`` waits for it).

A remote that stops answering is one warning: from then on this process reads miss,
claims are local only, and each generation that could not be pushed is noted as
``remote-pending/<key>`` in the cache folder; the next run with the remote pushes
those first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import threading
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flowpipe.errors import FlowpipeError, RemoteError, UsageError
from flowpipe.imagebytes import sniff_image
from flowpipe.store.lock import read_lock
from flowpipe.store.responses import CachedGeneration, sha256_hex
from flowpipe.store.s3 import Bucket, RemoteSpec, parse_remote

if TYPE_CHECKING:
    from flowpipe.planner import Plan
    from flowpipe.store.responses import ResponseCache

__all__ = ["LAYOUT", "RemoteCache", "lock_images", "open_remote", "resolve_remote"]

log = logging.getLogger("flowpipe.remote")
T = TypeVar("T")

LAYOUT = "v1"
CALL_TIMEOUT = 120.0  # seconds a sync caller waits, beyond obstore's own timeouts
CONCURRENCY = 16  # objects in flight in a batch (prefetch, push, pull)
_KEEP = object()


def gen_path(key: str) -> str:
    return f"{LAYOUT}/gen/{key}"


def img_path(sha: str) -> str:
    return f"{LAYOUT}/img/{sha}"


def claim_path(key: str) -> str:
    return f"{LAYOUT}/claims/{key}"


DONE = b'{"done": true}'  # the claim object of a key whose record is on the remote


class _LoopThread:
    """An event loop in a daemon thread: where every remote call runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="flowpipe-remote",
                                        daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        """Cancel what is still on the loop, then stop it. A bare ``stop`` could leave a
        coroutine handed over just before it unstarted, and its future never settled."""
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(_cancel_all_and_stop(), self.loop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_all_and_stop() -> None:
    here = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not here]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    asyncio.get_running_loop().stop()


class RemoteCache:
    """One remote, its health, and the work done with it in this process."""

    def __init__(self, bucket: Bucket, *, pending: Path | None = None,
                 concurrency: int = CONCURRENCY) -> None:
        self.bucket = bucket
        self.pending = pending
        self.concurrency = concurrency
        self.available = True
        self.pulled = 0
        self.pushed = 0
        self.refused = 0
        self.expected: dict[str, tuple[str, ...]] = {}  # key -> image hashes a lock names
        self._absent: set[str] = set()  # known missing (looked, or claimed first) until recheck
        self._refused: dict[str, str | None] = {}  # path -> etag of the version refused
        self._pushes: dict[str, concurrent.futures.Future[Any]] = {}  # key -> its write-through
        self._background: set[concurrent.futures.Future[Any]] = set()
        self._lost_lock = threading.Lock()
        self._loop = _LoopThread()

    @property
    def url(self) -> str:
        return self.bucket.spec.url

    def __repr__(self) -> str:
        return f"RemoteCache({self.url!r})"

    # -- plumbing: sync callers wait on the remote's loop ------------------------------

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the remote's loop and wait; RemoteError if it fails."""
        future = self._loop.submit(coro)
        try:
            return future.result(timeout=CALL_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RemoteError(f"{self.url}: no answer in {CALL_TIMEOUT:.0f} s") from None

    def attempt(self, coro: Coroutine[Any, Any, T], default: T) -> T:
        """``call``; a failure turns the remote off (one warning) and gives ``default``."""
        if not self.available:
            coro.close()
            return default
        try:
            return self.call(coro)
        except RemoteError as exc:
            self.lost(exc)
            return default

    async def attempt_async(self, coro: Coroutine[Any, Any, T], default: T) -> T:
        """``attempt`` for a caller on another event loop: it awaits, nothing blocks."""
        if not self.available:
            coro.close()
            return default
        try:
            return await asyncio.wrap_future(self._loop.submit(coro))
        except RemoteError as exc:
            self.lost(exc)
            return default

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any] | None:
        """Start ``coro`` on the remote's loop without waiting (``aclose`` waits)."""
        if not self.available:
            coro.close()
            return None
        future = self._loop.submit(self._reporting(coro))
        self._background.add(future)
        future.add_done_callback(self._background.discard)
        return future

    async def _reporting(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro``; a failure turns the remote off before anyone sees it finished."""
        try:
            return await coro
        except RemoteError as exc:
            self.lost(exc)
            raise

    def lost(self, exc: BaseException) -> None:
        """The remote stopped answering: say so once and go on without it."""
        with self._lost_lock:  # the loop thread and the run's threads may fail at once
            first, self.available = self.available, False
        if first:
            log.warning(
                "remote cache %s stopped answering (%s); going on with the local cache, "
                "and the next run pushes what this one could not", self.url, exc,
            )

    async def aclose(self, timeout: float = 60.0) -> None:
        """Wait for background work (claim releases, pushes), then stop the loop."""
        waiting = [asyncio.wrap_future(f) for f in list(self._background)]
        if waiting:
            done, late = await asyncio.wait(waiting, timeout=timeout)
            for future in done:  # failures were reported by _reporting
                future.exception()
            for future in late:
                future.cancel()
        self._loop.close()

    def flush(self, timeout: float = 60.0) -> None:
        """Wait for background work (for sync callers and tests)."""
        concurrent.futures.wait(list(self._background), timeout=timeout)

    def close(self, timeout: float = 60.0) -> None:
        self.flush(timeout)
        self._loop.close()

    def summary(self) -> dict[str, Any]:
        """What run.json records about the remote (no credentials: there are none here)."""
        return {"url": self.url, "available": self.available, "pulled": self.pulled,
                "pushed": self.pushed, "refused": self.refused}

    # -- verification --------------------------------------------------------------------

    def refuse(self, path: str, etag: str | None, why: str) -> None:
        """Report a bad object once; it is never used, and a later write replaces it."""
        if path not in self._refused:
            self._refused[path] = etag
            self.refused += 1
            log.warning("remote object %s refused: %s; it is not used",
                        self.bucket.url(path), why)

    def decode_record(self, key: str, raw: bytes) -> CachedGeneration:
        """A remote record, checked against its key and any lock; ValueError if bad."""
        try:
            data = json.loads(raw)
            named = str(data["key"])
            gen = CachedGeneration.from_dict(data["generation"])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"unreadable record ({type(exc).__name__}: {exc})") from exc
        if named != key:
            raise ValueError(f"it is the record of key {named[:16]}…")
        want = self.expected.get(key)
        have = tuple(img.sha256 for img in gen.images)
        if want is not None and have != want:
            raise ValueError("its image hashes differ from the ones the lock file records")
        return gen

    def check_image(self, sha: str, data: bytes) -> str | None:
        """Why ``data`` cannot be the image named ``sha``, or None if it is."""
        actual = sha256_hex(data)
        if actual != sha:
            return f"its bytes hash to {actual[:16]}…, not to the SHA-256 in its name"
        if sniff_image(data) is None:
            return "it is not a whole JPEG or PNG"
        return None

    # -- reads ---------------------------------------------------------------------------

    def fetch(self, key: str, local: ResponseCache) -> bool:
        """Pull ``key``'s record and images into ``local``; True if they are there now."""
        if not self.available or key in self._absent:
            return False
        return self.attempt(self._pull(key, local), False)

    async def fetch_async(self, key: str, local: ResponseCache) -> bool:
        """``fetch`` for a caller on another event loop: it awaits the remote's loop, so
        nothing blocks while the object comes."""
        if not self.available or key in self._absent:
            return False
        return await self.attempt_async(self._pull(key, local), False)

    def recheck(self, key: str) -> None:
        """Forget that ``key`` was missing: another process may have made it since."""
        self._absent.discard(key)

    def absent(self, key: str) -> None:
        """``key`` is known not to be on the remote (this process just claimed it first)."""
        self._absent.add(key)

    def known_absent(self, key: str) -> bool:
        return key in self._absent

    async def _pull(self, key: str, local: ResponseCache) -> bool:
        path = gen_path(key)
        blob = await self.bucket.get(path)
        if blob is None:
            self._absent.add(key)
            return False
        try:
            gen = self.decode_record(key, blob.data)
        except ValueError as exc:
            self.refuse(path, blob.etag, str(exc))
            self._absent.add(key)
            return False
        blobs = await asyncio.gather(*(self._image(img.sha256, local) for img in gen.images))
        images = [b for b in blobs if b is not None]
        if len(images) != len(blobs):
            bad = [img.sha256 for img, b in zip(gen.images, blobs, strict=True) if b is None]
            missing = [sha for sha in bad if img_path(sha) not in self._refused]
            if missing:
                self.refuse(path, blob.etag, f"its image {missing[0][:16]}… is not on the remote")
            else:  # the image's own warning said why; a good record replaces this one later
                self._refused.setdefault(path, blob.etag)
            self._absent.add(key)
            return False
        local.store_local(key, gen, images)
        self.pulled += 1
        return True

    def fetch_image(self, sha: str, local: ResponseCache) -> bytes | None:
        """One image by hash (a record is local but its bytes are not)."""
        if not self.available:
            return None
        return self.attempt(self._image(sha, local), None)

    async def _image(self, sha: str, local: ResponseCache) -> bytes | None:
        have = local.get_image(sha, remote=False)
        if have is not None:
            return have
        path = img_path(sha)
        blob = await self.bucket.get(path)
        if blob is None:
            return None
        why = self.check_image(sha, blob.data)
        if why is not None:
            self.refuse(path, blob.etag, why)
            return None
        local.put_image(blob.data, sha=sha)
        return blob.data

    # -- writes --------------------------------------------------------------------------

    def push(self, key: str, gen: CachedGeneration, blobs: list[bytes]) -> None:
        """Write-through of one new generation, in the background; noted until it is done."""
        self.note_pending(key)
        future = self.spawn(self._push_noted(key, gen, blobs))
        if future is not None:
            self._pushes[key] = future

    def pushing(self, key: str) -> bool:
        """Whether this process pushes (or pushed) ``key``: its push ends the claim."""
        return key in self._pushes

    async def _push_noted(self, key: str, gen: CachedGeneration, blobs: list[bytes]) -> None:
        await self._push(key, gen, blobs)
        self.pending_done(key)

    async def _push(self, key: str, gen: CachedGeneration, blobs: list[bytes]) -> None:
        """Images first, then the record that points at them, then the claim says done."""
        await asyncio.gather(*(
            self._put(img_path(img.sha256), data)
            for img, data in zip(gen.images, blobs, strict=True)
        ))
        record = json.dumps({"key": key, "generation": gen.as_dict()}, sort_keys=True,
                            separators=(",", ":")).encode()
        await self.bucket.put(gen_path(key), record)  # the key was made (again): ours now
        await self.bucket.put(claim_path(key), DONE)
        self.pushed += 1

    async def _put(self, path: str, data: bytes) -> None:
        """An image: created once, never overwritten, unless this process refused it."""
        etag = self._refused.pop(path, _KEEP)
        if etag is not _KEEP and await self.bucket.replace(path, data, etag):  # type: ignore[arg-type]
            log.warning("remote object %s replaced by a verified copy", self.bucket.url(path))
            return
        await self.bucket.create(path, data)  # False: it exists, with these very bytes

    def note_pending(self, key: str) -> None:
        if self.pending is None:
            return
        with contextlib.suppress(OSError):
            self.pending.mkdir(parents=True, exist_ok=True, mode=0o700)
            (self.pending / key).touch()

    def pending_done(self, key: str) -> None:
        if self.pending is not None:
            with contextlib.suppress(OSError):
                (self.pending / key).unlink(missing_ok=True)

    def pending_keys(self) -> list[str]:
        if self.pending is None:
            return []
        with contextlib.suppress(OSError):
            return sorted(p.name for p in self.pending.iterdir() if len(p.name) == 64)
        return []

    async def push_many(self, keys: Iterable[str], local: ResponseCache) -> int:
        """Push local generations by key, ``concurrency`` at a time; count those pushed."""
        sem = asyncio.Semaphore(self.concurrency)

        async def one(key: str) -> int:
            async with sem:
                hit = local.get_generation(key, remote=False)
                if hit is None:
                    self.pending_done(key)  # nothing local to push any more
                    return 0
                await self._push(key, *hit)
                self.pending_done(key)
                return 1

        return sum(await asyncio.gather(*(one(k) for k in keys)))

    # -- batches before a run --------------------------------------------------------------

    async def pull_many(self, keys: Iterable[str], local: ResponseCache) -> int:
        """Pull every key not in ``local`` yet, ``concurrency`` at a time; count pulled."""
        sem = asyncio.Semaphore(self.concurrency)

        async def one(key: str) -> bool:
            if local.store.contains(f"gen:{key}"):
                return False
            async with sem:
                return await self._pull(key, local)

        return sum(await asyncio.gather(*(one(k) for k in dict.fromkeys(keys))))

    async def prepare(self, local: ResponseCache, plan: Plan, lock: Path | None) -> None:
        """Before ``prime``: trust the lock's hashes, pull what the run will ask for in one
        batch, and push (in the background) what an earlier run could not."""
        locked = lock_images(lock) if lock is not None else {}
        self.expected.update(locked)
        roots = [n.provisional_key for n in plan.nodes.values() if not n.deps]
        await self.attempt_async(self.pull_many([*roots, *locked], local), 0)
        waiting = self.pending_keys()
        if waiting:
            self.spawn(self.push_many(waiting, local))


def lock_images(path: Path) -> dict[str, tuple[str, ...]]:
    """Each locked key with its image hashes; {} if the lock is absent or unreadable."""
    try:
        lock = read_lock(path)
    except FlowpipeError:
        return {}
    return {entry.key: entry.images for entry in lock.nodes.values()}


def resolve_remote(url: str | None, *, start: Path) -> RemoteSpec | None:
    """``url`` (``--remote``), else ``FLOWPIPE_REMOTE``, else the project config file."""
    from flowpipe.config import load_config

    config = load_config(start)
    url = url or os.environ.get("FLOWPIPE_REMOTE") or config.remote
    if not url:
        return None
    return parse_remote(url, endpoint=config.endpoint, region=config.region)


def open_remote(url: str | None, *, start: Path, cache_folder: Path | None) -> RemoteCache | None:
    """The run's remote, or None when none is configured; bad configuration is an error."""
    spec = resolve_remote(url, start=start)
    if spec is None:
        return None
    try:
        bucket = Bucket(spec)
    except ImportError as exc:
        raise UsageError(
            f"the remote cache {spec.url} needs obstore",
            hint="pip install 'flowpipe[remote]'",
        ) from exc
    pending = cache_folder / "remote-pending" if cache_folder is not None else None
    return RemoteCache(bucket, pending=pending)

