"""Claims across machines: a lease object per request key on the remote cache.

Before a request is sent, the process creates ``v1/claims/<key>`` with
``If-None-Match: *``; the storage server lets exactly one creator win. The body says
who holds it: ``{"host", "pid", "run", "lease_seconds", "created"}``. A process that
finds the claim waits (the scheduler looks for the result again a moment later) and
takes the generation from the remote once the holder has pushed it. Pushing a record
turns its claim into ``{"done": true}``; a claim whose request failed goes back to
done if the key is on the remote and is deleted if it is not. So a claim created is
proof that the key was not made before: the claimer sends at once, with no second
look at the remote (one round trip per request sent). A done claim is granted too
(``--refresh`` makes a key again), with a look at the remote first: the scheduler
looks at the cache once more after every claim, and a run that is not refreshing
finds the result there.

A lease runs out ``lease_seconds`` after the object's Last-Modified time (the storage
server's clock, so machines only need clocks roughly in step with it). A claim whose
lease ran out, or that a dead process on this host left, is taken over with a
conditional replace (``If-Match`` on the version that was read): of two processes that
find it expired at once, one wins, and it looks at the remote before sending.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flowpipe.store.claims import Claims
from flowpipe.store.claims import _alive as pid_alive  # same test as local claims
from flowpipe.store.remote import DONE, RemoteCache, claim_path
from flowpipe.store.s3 import Blob

__all__ = ["LEASE_SECONDS", "RemoteClaims", "SharedClaims"]

log = logging.getLogger("flowpipe.remote")

LEASE_SECONDS = 600.0  # longer than the request a claim covers (375 s at most: caching.md)


class RemoteClaims:
    """``try_claim``/``release`` on the remote; a remote that is down claims nothing."""

    def __init__(self, remote: RemoteCache, *, lease: float = LEASE_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.remote = remote
        self.lease = lease
        self.clock = clock
        self.taken_over = 0
        self._host = socket.gethostname()
        self._run = secrets.token_hex(8)
        self._held: set[str] = set()
        self._waiting: set[str] = set()  # keys whose claim another process holds

    def _body(self) -> bytes:
        created = datetime.fromtimestamp(self.clock(), UTC).isoformat().replace("+00:00", "Z")
        return json.dumps({"host": self._host, "pid": os.getpid(), "run": self._run,
                           "lease_seconds": self.lease, "created": created}).encode()

    def try_claim(self, key: str) -> bool:
        """True if this process may send ``key``; False while another one holds it."""
        return self.remote.attempt(self._claim(key), True)

    async def try_claim_async(self, key: str) -> bool:
        """``try_claim`` that awaits the round trip instead of blocking the caller's loop."""
        return await self.remote.attempt_async(self._claim(key), True)

    async def _claim(self, key: str) -> bool:
        bucket = self.remote.bucket
        path = claim_path(key)
        for _ in range(2):
            # a claim seen alive is read first, not created again
            if key not in self._waiting and await bucket.create(path, self._body()):
                self._held.add(key)
                self.remote.absent(key)  # first claim ever: nobody made it
                return True
            blob = await bucket.get(path)
            if blob is None:
                self._waiting.discard(key)
                continue  # released meanwhile: try to create it again
            if blob.data == DONE:  # made already: granted, and the caller looks first
                self._waiting.discard(key)
                if not await bucket.replace(path, self._body(), blob.etag):
                    return False  # another process took it first
                self._held.add(key)
                self.remote.recheck(key)
                return True
            if self.expires(blob) is not None:
                self._waiting.add(key)
                return False
            self._waiting.discard(key)
            if await bucket.replace(path, self._body(), blob.etag):
                self.taken_over += 1
                log.info("took over the expired claim on %s", key[:16])
                self._held.add(key)
                self.remote.recheck(key)  # its holder may have pushed before it died
                return True
            return False  # another process took it over first
        return False

    def expires(self, blob: Blob) -> float | None:
        """When the claim in ``blob`` runs out, or None if it already has."""
        lease = self.lease
        try:
            body = json.loads(blob.data)
            lease = float(body["lease_seconds"])
            host, pid = str(body["host"]), int(body["pid"])
        except (ValueError, KeyError, TypeError):
            host, pid = "", 0  # unreadable: it still runs out after our lease
        if host == self._host and pid != os.getpid() and pid > 0 and not pid_alive(pid):
            return None
        until = blob.modified.timestamp() + lease
        return until if self.clock() < until else None

    def release(self, key: str) -> None:
        """End our claim (background). A push marks it done; without one it says done if
        the key is on the remote (a look found it) and is deleted if it is not."""
        if key not in self._held:
            return
        self._held.discard(key)
        if self.remote.pushing(key):
            return
        if self.remote.known_absent(key):
            self.remote.spawn(self.remote.bucket.delete(claim_path(key)))
        else:
            self.remote.spawn(self.remote.bucket.put(claim_path(key), DONE))

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)


class SharedClaims:
    """The cache folder's claims (processes on this machine), then the remote's."""

    def __init__(self, local: Claims | None, remote: RemoteClaims) -> None:
        self.local = local
        self.remote = remote

    def try_claim(self, key: str) -> bool:
        if self.local is not None and not self.local.try_claim(key):
            return False
        return self._remote_said(key, self.remote.try_claim(key))

    async def try_claim_async(self, key: str) -> bool:
        if self.local is not None and not self.local.try_claim(key):
            return False
        return self._remote_said(key, await self.remote.try_claim_async(key))

    def _remote_said(self, key: str, claimed: bool) -> bool:
        if not claimed and self.local is not None:
            self.local.release(key)  # the other machine has it: give this one back
        return claimed

    def release(self, key: str) -> None:
        if self.local is not None:
            self.local.release(key)
        self.remote.release(key)

    def release_all(self) -> None:
        if self.local is not None:
            self.local.release_all()
        self.remote.release_all()
