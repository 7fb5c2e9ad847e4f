"""What the simulator remembers per request, bounded: its memory stays flat however long
it serves (the embedded simulator shares a process with a run of up to 100,000 nodes).

The counts that make a retry differ from the first attempt, and the record of who made
which bytes, only matter for a while after a request: a retry comes seconds later. So
each is kept for the most recent ``size`` distinct keys (least recently used first out),
under a 16-byte digest of the key instead of the key's text.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

__all__ = ["RECENT", "RecentCounts", "RecentOwners"]

RECENT = 4096  # distinct requests (or images) remembered: far more than are ever in flight


def _digest(parts: tuple[object, ...]) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()


class RecentCounts:
    """How many times each recent key was seen."""

    def __init__(self, size: int = RECENT) -> None:
        self._size = size
        self._counts: OrderedDict[bytes, int] = OrderedDict()

    def bump(self, *key: object) -> int:
        """How many times ``key`` was seen before (then one more)."""
        digest = _digest(key)
        seen = self._counts.pop(digest, 0)
        self._counts[digest] = seen + 1
        if len(self._counts) > self._size:
            self._counts.popitem(last=False)
        return seen

    def __len__(self) -> int:
        return len(self._counts)


class RecentOwners:
    """Which accounts made each recent image (by its SHA-256)."""

    def __init__(self, size: int = RECENT) -> None:
        self._size = size
        self._owners: OrderedDict[bytes, frozenset[str]] = OrderedDict()

    def add(self, sha256: str, account: str) -> None:
        digest = _digest((sha256,))
        owners = self._owners.pop(digest, frozenset())
        self._owners[digest] = owners | {account}
        if len(self._owners) > self._size:
            self._owners.popitem(last=False)

    def made(self, sha256: str, account: str) -> bool:
        """Whether ``account`` made these bytes (as far as is remembered)."""
        return account in self._owners.get(_digest((sha256,)), frozenset())

    def __len__(self) -> int:
        return len(self._owners)
