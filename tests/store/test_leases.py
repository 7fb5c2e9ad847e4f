"""Claims across machines: conditional create, leases that run out, take-over, release."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowpipe.store.claims import KeyClaims
from flowpipe.store.leases import RemoteClaims, SharedClaims
from flowpipe.store.remote import DONE, RemoteCache, claim_path
from flowpipe.store.s3 import Bucket, parse_remote

KEY = "c" * 64


@pytest.fixture
def remote(remote_url: str) -> Iterator[Callable[[], RemoteCache]]:
    """Each call is another 'machine': its own client and loop on the same bucket."""
    opened: list[RemoteCache] = []

    def make() -> RemoteCache:
        opened.append(RemoteCache(Bucket(parse_remote(remote_url), retries=0)))
        return opened[-1]

    yield make
    for r in opened:
        r.close()


def test_one_claim_wins_until_it_is_released(remote: Callable[[], RemoteCache]) -> None:
    first, second = RemoteClaims(remote()), RemoteClaims(remote())
    assert first.try_claim(KEY) is True
    assert second.try_claim(KEY) is False  # If-None-Match: * lost; the lease is fresh
    assert second.try_claim(KEY) is False  # still held: read, not created again
    first.release(KEY)
    first.remote.close()  # waits for the background delete
    assert second.try_claim(KEY) is True


def test_an_expired_lease_is_taken_over_once(remote: Callable[[], RemoteCache]) -> None:
    holder = RemoteClaims(remote(), lease=1.0)
    assert holder.try_claim(KEY)
    later = time.time() + 30  # two other machines look 30 s later: the lease ran out
    b = RemoteClaims(remote(), clock=lambda: later)
    assert b.try_claim(KEY) is True
    assert b.taken_over == 1
    c = RemoteClaims(remote())  # now, with a fresh lease written by b
    assert c.try_claim(KEY) is False


def test_two_take_overs_of_one_expired_claim_cannot_both_win(
    remote: Callable[[], RemoteCache],
) -> None:
    r = remote()
    assert RemoteClaims(r, lease=1.0).try_claim(KEY)
    seen = r.call(r.bucket.get(claim_path(KEY)))
    assert seen is not None
    # both read the same expired version; If-Match lets exactly one replace it
    wins = [r.call(r.bucket.replace(claim_path(KEY), body, seen.etag)) for body in (b"b", b"c")]
    assert wins == [True, False]


def test_a_claim_left_by_a_dead_process_on_this_host_is_taken_at_once(
    remote: Callable[[], RemoteCache],
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    r = remote()
    body = json.dumps({"host": socket.gethostname(), "pid": dead.pid, "run": "x",
                       "lease_seconds": 600, "created": "2026-01-01T00:00:00Z"}).encode()
    assert r.call(r.bucket.create(claim_path(KEY), body))
    assert RemoteClaims(r).try_claim(KEY) is True


def test_a_claim_of_another_host_waits_for_its_lease(remote: Callable[[], RemoteCache]) -> None:
    r = remote()
    body = json.dumps({"host": "elsewhere", "pid": 1, "run": "x", "lease_seconds": 600,
                       "created": "2026-01-01T00:00:00Z"}).encode()
    assert r.call(r.bucket.create(claim_path(KEY), body))
    assert RemoteClaims(r).try_claim(KEY) is False
    assert RemoteClaims(r, clock=lambda: time.time() + 601).try_claim(KEY) is True


def test_shared_claims_ask_this_machine_first_and_give_back_on_a_remote_no(
    remote: Callable[[], RemoteCache], tmp_path: Path,
) -> None:
    here = KeyClaims(tmp_path / "claims")
    other_machine = RemoteClaims(remote())
    assert other_machine.try_claim(KEY)
    shared = SharedClaims(here, RemoteClaims(remote()))
    assert shared.try_claim(KEY) is False
    assert not (tmp_path / "claims" / KEY).exists()  # the local claim was given back
    same_machine = KeyClaims(tmp_path / "claims")
    assert same_machine.try_claim("d" * 64)
    assert shared.try_claim("d" * 64) is False  # held on this machine: the remote is not asked
    assert shared.try_claim("e" * 64) is True
    shared.release_all()
    assert not (tmp_path / "claims" / ("e" * 64)).exists()


def test_a_remote_that_is_down_claims_nothing_and_blocks_nothing(
    s3_endpoint: str, own_s3: Any, bucket_on: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, endpoint = own_s3()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    r = RemoteCache(Bucket(parse_remote(f"s3://{bucket_on(endpoint)}/p"), retries=0))
    server.stop()
    try:
        claims = RemoteClaims(r)
        assert claims.try_claim(KEY) is True  # claims are an optimisation
        assert not r.available
        claims.release(KEY)
    finally:
        r.close()


def test_a_claim_ends_done_when_its_generation_is_pushed_and_a_later_claim_looks_first(
    remote: Callable[[], RemoteCache],
) -> None:
    from flowpipe.store import MemoryCache, ResponseCache

    from .conftest import make_jpeg
    from .test_remote import generation

    maker, waiter = remote(), remote()
    holder, other = RemoteClaims(maker), RemoteClaims(waiter)
    here = ResponseCache(MemoryCache(), remote=waiter)
    assert here.get_generation(KEY) is None  # not made yet
    assert holder.try_claim(KEY) and not other.try_claim(KEY)
    blobs = [make_jpeg((3, 30, 90))]
    ResponseCache(MemoryCache(), remote=maker).put_generation(KEY, generation(blobs), blobs)
    holder.release(KEY)  # pushed: the push, not a delete, ends the claim
    maker.flush()
    assert maker.call(maker.bucket.get(claim_path(KEY))).data == DONE  # type: ignore[union-attr]
    assert other.try_claim(KEY) is True  # made: granted, and the look after it pulls it
    got = here.get_generation(KEY)
    assert got is not None and got[1] == blobs
    other.release(KEY)  # nothing pushed: it is done again, not deleted
    waiter.flush()
    assert waiter.call(waiter.bucket.get(claim_path(KEY))).data == DONE  # type: ignore[union-attr]
    assert RemoteClaims(remote()).try_claim(KEY) is True  # granted over done, again


def test_a_claim_taken_over_from_a_holder_that_pushed_but_died_goes_back_to_done(
    remote: Callable[[], RemoteCache],
) -> None:
    from flowpipe.store import MemoryCache, ResponseCache

    from .conftest import make_jpeg
    from .test_remote import generation

    r = remote()
    blobs = [make_jpeg((80, 80, 20))]
    ResponseCache(MemoryCache(), remote=r).put_generation(KEY, generation(blobs), blobs)
    r.flush()
    body = json.dumps({"host": "elsewhere", "pid": 1, "run": "x", "lease_seconds": 1,
                       "created": "2026-01-01T00:00:00Z"}).encode()
    r.call(r.bucket.put(claim_path(KEY), body))  # it died after the record, before 'done'
    later = remote()
    claims = RemoteClaims(later, clock=lambda: time.time() + 30)
    assert claims.try_claim(KEY) is True and claims.taken_over == 1
    assert ResponseCache(MemoryCache(), remote=later).get_generation(KEY) is not None
    claims.release(KEY)  # nothing sent: the key is on the remote, so the claim says done
    later.flush()
    assert later.call(later.bucket.get(claim_path(KEY))).data == DONE  # type: ignore[union-attr]
