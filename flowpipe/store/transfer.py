"""``flowpipe cache push`` and ``pull``: generations between the cache folder and the remote.

Both compare names (one listing of ``v1/gen/``, or the keys a lock file names) and copy
only what the other side lacks, ``CONCURRENCY`` objects at a time. Pulled objects are
verified exactly as during a run; a lock's image hashes are checked too. Unlike a run,
a remote that does not answer is an error here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowpipe.errors import UsageError
from flowpipe.store.cache import DiskCache
from flowpipe.store.remote import LAYOUT, RemoteCache, lock_images, open_remote
from flowpipe.store.responses import ResponseCache

__all__ = ["TransferReport", "pull_folder", "push_folder"]


@dataclass(frozen=True, slots=True)
class TransferReport:
    """What a push or pull did; ``missing`` are keys asked for that could not be had."""

    remote: str
    copied: int
    present: int
    missing: tuple[str, ...] = ()
    refused: int = 0


def _open(remote_url: str | None, start: Path, folder: Path) -> RemoteCache:
    remote = open_remote(remote_url, start=start, cache_folder=folder)
    if remote is None:
        raise UsageError(
            "no remote cache configured",
            hint="name one (s3://BUCKET/PREFIX), set FLOWPIPE_REMOTE, "
            "or write remote: in .flowpipe.yaml",
            option="remote",
        )
    return remote


def push_folder(folder: Path, *, remote_url: str | None = None,
                start: Path | None = None) -> TransferReport:
    """Push every generation of the cache folder that the remote does not have."""
    store = DiskCache(folder)
    remote = _open(remote_url, start or Path.cwd(), folder)
    try:
        cache = ResponseCache(store)
        local = [k[4:] for k in store.keys() if k.startswith("gen:")]  # noqa: SIM118
        there = remote.call(remote.bucket.names(f"{LAYOUT}/gen"))
        wanted = [k for k in local if k not in there]
        copied = remote.call(remote.push_many(wanted, cache)) if wanted else 0
        for key in remote.pending_keys():
            if key in there:
                remote.pending_done(key)
        return TransferReport(remote.url, copied, len(local) - len(wanted),
                              missing=(), refused=remote.refused)
    finally:
        remote.close()
        store.close()


def pull_folder(folder: Path, *, locks: Sequence[Path] = (), remote_url: str | None = None,
                start: Path | None = None) -> TransferReport:
    """Pull what ``locks`` name (every generation on the remote without one)."""
    for lock in locks:
        if not lock.is_file():
            raise UsageError(f"{lock}: no such file", option="locks")
    store = DiskCache(folder)
    remote = _open(remote_url, start or (locks[0].parent if locks else Path.cwd()), folder)
    try:
        cache = ResponseCache(store)
        if locks:
            keys: list[str] = []
            for lock in locks:
                named = lock_images(lock)
                if not named:
                    raise UsageError(f"{lock}: not a flowpipe lock file with nodes",
                                     option="locks")
                remote.expected.update(named)
                keys.extend(named)
        else:
            keys = sorted(remote.call(remote.bucket.names(f"{LAYOUT}/gen")))
        keys = list(dict.fromkeys(keys))
        present = sum(1 for k in keys if store.contains(f"gen:{k}"))
        copied = remote.call(remote.pull_many(keys, cache)) if len(keys) > present else 0
        missing = tuple(k for k in keys if cache.get_generation(k, remote=False) is None)
        return TransferReport(remote.url, copied, present, missing, remote.refused)
    finally:
        remote.close()
        store.close()
