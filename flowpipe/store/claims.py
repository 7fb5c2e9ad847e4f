"""Cross-process claims on request keys, so two runs sharing a cache pay once.

A process that is about to send a request creates ``claims/<key>`` in the cache folder;
another process that finds the file waits for the key to appear in the cache instead of
sending the same (billed) request. A claim lives only while its request is in flight.

A claim appears whole or not at all: its text (``HOST PID``) is written to a temporary
file that is then hard-linked to the claim's name, which fails if the name exists. So
an empty claim file only comes from elsewhere (an older flowpipe, a crash of the file
system); it is stale after ``UNREADABLE_GRACE`` seconds. A claim left by a process that
died (``kill -9``) is taken over at once if it is on this host and its pid is gone, or
after ``STALE_AFTER`` seconds. A full disk under the cache folder is a ``CacheError``
before anything is sent: its answer could not be stored anyway.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Protocol

from flowpipe.errors import CacheError

__all__ = ["STALE_AFTER", "UNREADABLE_GRACE", "Claims", "KeyClaims"]

STALE_AFTER = 600.0  # seconds; longer than the request a claim covers (375 s at most)
UNREADABLE_GRACE = 10.0  # seconds an empty or garbled claim is respected
_DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_NO_LINKS = frozenset(
    {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", 95)}
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class KeyClaims:
    """Claims under ``folder``; cheap, and never in the way except on a full disk."""

    def __init__(
        self,
        folder: Path,
        *,
        stale_after: float = STALE_AFTER,
        unreadable_grace: float = UNREADABLE_GRACE,
    ) -> None:
        self.folder = Path(folder)
        self.stale_after = stale_after
        self.unreadable_grace = unreadable_grace
        self._host = socket.gethostname()
        self._held: set[str] = set()
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def try_claim(self, key: str) -> bool:
        """True if this process may send ``key`` now; False if another one is sending it.

        Raises CacheError when the disk under the cache folder is full.
        """
        path = self.folder / key
        for _ in range(2):
            try:
                self._create(path)
            except FileExistsError:
                if not self._stale(path):
                    return False
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            except OSError as exc:
                if exc.errno in _DISK_FULL:
                    raise CacheError(
                        f"disk full in the cache folder {self.folder.parent}: cannot record "
                        "the request about to be sent",
                        hint="free some space and run again; nothing was sent for it",
                    ) from None
                return True  # claims are an optimisation: never block a run on them
            self._held.add(key)
            return True
        return False

    def _create(self, path: Path) -> None:
        """Make ``path`` hold this process's claim, or raise FileExistsError."""
        text = f"{self._host} {os.getpid()}\n".encode()
        fd, tmp = tempfile.mkstemp(prefix=".new-", suffix=".claim", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
            try:
                os.link(tmp, path)
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                self._create_exclusive(path, text)  # a file system without hard links
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    @staticmethod
    def _create_exclusive(path: Path, text: bytes) -> None:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, text)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        os.close(fd)

    def _stale(self, path: Path) -> bool:
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return True  # vanished meanwhile: try again
        try:
            text = path.read_text(errors="replace")
        except OSError:
            text = ""  # unreadable: like an empty claim
        if age > self.stale_after:
            return True
        host, _, pid = text.strip().partition(" ")
        if not host or not pid.isdigit():
            return age > self.unreadable_grace
        return host == self._host and not _alive(int(pid))

    async def try_claim_async(self, key: str) -> bool:
        """``try_claim`` for the scheduler: a file is quick, so nothing waits."""
        return self.try_claim(key)

    def release(self, key: str) -> None:
        if key in self._held:
            self._held.discard(key)
            with contextlib.suppress(OSError):
                (self.folder / key).unlink()

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)


class Claims(Protocol):
    """What the scheduler needs of claims: these, the remote's (leases.py), or both."""

    def try_claim(self, key: str) -> bool: ...

    async def try_claim_async(self, key: str) -> bool: ...

    def release(self, key: str) -> None: ...

    def release_all(self) -> None: ...
