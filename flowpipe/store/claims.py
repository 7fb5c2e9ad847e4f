"""Cross-process claims on request keys, so two runs sharing a cache pay once.

A process that is about to send a request creates ``claims/<key>`` in the cache folder
with ``O_EXCL``; another process that finds the file waits for the key to appear in
the cache instead of sending the same (billed) request. A claim lives only while its
request is in flight. One left by a process that died (``kill -9``) is taken over: its
pid is gone, or it is older than any request can take.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Protocol

__all__ = ["Claims", "KeyClaims"]

STALE_AFTER = 600.0  # seconds; longer than a generation with its client timeout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class KeyClaims:
    """Claims under ``folder``; every method is cheap and never raises on I/O trouble."""

    def __init__(self, folder: Path, *, stale_after: float = STALE_AFTER) -> None:
        self.folder = Path(folder)
        self.stale_after = stale_after
        self._host = socket.gethostname()
        self._held: set[str] = set()
        with contextlib.suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def try_claim(self, key: str) -> bool:
        """True if this process may send ``key`` now; False if another one is sending it."""
        path = self.folder / key
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                if not self._stale(path):
                    return False
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            except OSError:
                return True  # claims are an optimisation: never block a run on them
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{self._host} {os.getpid()}\n")
            self._held.add(key)
            return True
        return False

    def _stale(self, path: Path) -> bool:
        try:
            text = path.read_text()
            age = time.time() - path.stat().st_mtime
        except OSError:
            return True  # vanished meanwhile: try again
        if age > self.stale_after:
            return True
        host, _, pid = text.strip().partition(" ")
        return host == self._host and pid.isdigit() and not _alive(int(pid))

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
