"""Read-through, write-through and verification against a real S3 server (moto)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowpipe.store import CachedGeneration, CachedImage, MemoryCache, ResponseCache, sha256_hex
from flowpipe.store.remote import (
    DONE,
    RemoteCache,
    _LoopThread,
    claim_path,
    gen_path,
    img_path,
)
from flowpipe.store.s3 import Bucket, parse_remote

from .conftest import make_jpeg

KEY = "a" * 64


def generation(blobs: list[bytes]) -> CachedGeneration:
    return CachedGeneration(
        images=tuple(
            CachedImage(sha256=sha256_hex(b), seed=3, media_generation_id=f"m{i}", width=64,
                        height=48)
            for i, b in enumerate(blobs)
        ),
        account="a@example.com", model_used="imagen-4", attempts=1, generation_seconds=11.0,
    )


@pytest.fixture
def open_remote(tmp_path: Path) -> Iterator[Callable[..., RemoteCache]]:
    opened: list[RemoteCache] = []

    def make(url: str, pending: Path | None = None) -> RemoteCache:
        remote = RemoteCache(Bucket(parse_remote(url), retries=0),
                             pending=pending or tmp_path / f"pending{len(opened)}")
        opened.append(remote)
        return remote

    yield make
    for remote in opened:
        remote.close()


def pushed(remote: RemoteCache, key: str, blobs: list[bytes]) -> None:
    """Write a generation through ``remote`` and wait for the background push."""
    ResponseCache(MemoryCache(), remote=remote).put_generation(key, generation(blobs), blobs)
    remote.flush()


def bucket_of(url: str) -> tuple[str, str]:
    spec = parse_remote(url)
    return spec.bucket, spec.prefix


def test_write_through_puts_images_and_a_keyed_record_under_v1(
    remote_url: str, open_remote: Callable[..., RemoteCache], s3: Any
) -> None:
    blobs = [make_jpeg((10, 20, 30)), make_jpeg((40, 50, 60))]
    gen = generation(blobs)
    remote = open_remote(remote_url)
    ResponseCache(MemoryCache(), remote=remote).put_generation(KEY, gen, blobs)
    assert remote.pending_keys() == [KEY]  # noted until the background push is done
    remote.flush()
    assert remote.pending_keys() == []
    bucket, prefix = bucket_of(remote_url)
    names = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert names == {f"{prefix}/{gen_path(KEY)}", f"{prefix}/{claim_path(KEY)}",
                     *(f"{prefix}/{img_path(sha256_hex(b))}" for b in blobs)}
    done = s3.get_object(Bucket=bucket, Key=f"{prefix}/{claim_path(KEY)}")["Body"].read()
    assert done == DONE  # a claim on this key now says: take it from the remote
    record = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/{gen_path(KEY)}")["Body"]
                        .read())
    assert record["key"] == KEY
    assert CachedGeneration.from_dict(record["generation"]) == gen


def test_a_local_miss_reads_through_and_keeps_a_local_copy(
    remote_url: str, open_remote: Callable[..., RemoteCache]
) -> None:
    blobs = [make_jpeg((1, 2, 3))]
    pushed(open_remote(remote_url), KEY, blobs)
    local = MemoryCache()
    remote = open_remote(remote_url)
    cache = ResponseCache(local, remote=remote)
    got = cache.get_generation(KEY)
    assert got is not None and got[1] == blobs
    assert local.contains(f"gen:{KEY}") and local.contains(f"img:{sha256_hex(blobs[0])}")
    assert remote.pulled == 1
    assert ResponseCache(local).get_generation(KEY) is not None  # no remote needed now


def _tamper(s3: Any, url: str, path: str, body: bytes) -> None:
    bucket, prefix = bucket_of(url)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{path}", Body=body)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        pytest.param(lambda blobs: (img_path(sha256_hex(blobs[0])), make_jpeg((0, 0, 255))),
                     "its bytes hash to", id="image-swapped"),
        pytest.param(lambda blobs: (img_path(sha256_hex(blobs[0])), blobs[0][:-40]),
                     "its bytes hash to", id="image-truncated"),
        pytest.param(lambda blobs: (gen_path(KEY), json.dumps(
            {"key": "b" * 64, "generation": generation(blobs).as_dict()}).encode()),
                     "it is the record of key bbbb", id="record-of-another-key"),
        pytest.param(lambda blobs: (gen_path(KEY), b"{not json"), "unreadable record",
                     id="record-garbage"),
    ],
)
def test_a_tampered_object_is_refused_with_one_clear_line_and_never_used(
    remote_url: str, open_remote: Callable[..., RemoteCache], s3: Any,
    caplog: pytest.LogCaptureFixture, damage: Callable[[list[bytes]], tuple[str, bytes]],
    why: str,
) -> None:
    blobs = [make_jpeg((90, 10, 10))]
    pushed(open_remote(remote_url), KEY, blobs)
    path, body = damage(blobs)
    _tamper(s3, remote_url, path, body)
    local = MemoryCache()
    remote = open_remote(remote_url)
    cache = ResponseCache(local, remote=remote)
    with caplog.at_level(logging.WARNING):
        assert cache.get_generation(KEY) is None
        assert cache.get_generation(KEY) is None  # asked again: still refused, not re-reported
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1  # one line, naming the object and why
    assert refusals[0].startswith(f"remote object {remote_url}/{path} refused: ")
    assert why in refusals[0] and refusals[0].endswith("; it is not used")
    assert remote.refused == 1
    assert list(local.keys()) == []  # nothing of it was kept


def test_a_record_that_differs_from_the_lock_is_refused(
    remote_url: str, open_remote: Callable[..., RemoteCache], caplog: pytest.LogCaptureFixture
) -> None:
    blobs = [make_jpeg((5, 5, 5))]
    pushed(open_remote(remote_url), KEY, blobs)
    remote = open_remote(remote_url)
    remote.expected[KEY] = ("f" * 64,)  # the lock says this key made other bytes
    with caplog.at_level(logging.WARNING):
        assert ResponseCache(MemoryCache(), remote=remote).get_generation(KEY) is None
    assert "differ from the ones the lock file records" in caplog.text


def test_a_fresh_generation_replaces_a_refused_object(
    remote_url: str, open_remote: Callable[..., RemoteCache], s3: Any
) -> None:
    blobs = [make_jpeg((70, 70, 10))]
    pushed(open_remote(remote_url), KEY, blobs)
    _tamper(s3, remote_url, img_path(sha256_hex(blobs[0])), make_jpeg((0, 0, 0)))
    remote = open_remote(remote_url)
    cache = ResponseCache(MemoryCache(), remote=remote)
    assert cache.get_generation(KEY) is None  # refused
    cache.put_generation(KEY, generation(blobs), blobs)  # re-made (same bytes): write-through
    remote.flush()
    assert ResponseCache(MemoryCache(), remote=open_remote(remote_url)).get_generation(KEY)


def test_a_dead_remote_is_one_warning_and_what_was_not_pushed_is_pushed_later(
    s3_endpoint: str, own_s3: Any, bucket_on: Any, monkeypatch: pytest.MonkeyPatch,
    open_remote: Callable[..., RemoteCache], caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:
    server, endpoint = own_s3()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    url = f"s3://{bucket_on(endpoint)}/team"
    pending = tmp_path / "remote-pending"
    remote = open_remote(url, pending=pending)
    cache = ResponseCache(MemoryCache(), remote=remote)
    made = {k * 64: [make_jpeg((i * 40, 9, 9))] for i, k in enumerate("123")}
    cache.put_generation("1" * 64, generation(made["1" * 64]), made["1" * 64])
    remote.flush()
    server.stop()
    with caplog.at_level(logging.WARNING):
        for key in ("2" * 64, "3" * 64):
            cache.put_generation(key, generation(made[key]), made[key])  # never raises
            remote.flush()
        assert cache.get_generation("4" * 64) is None  # a miss, not an error
    lost = [r for r in caplog.records if "stopped answering" in r.getMessage()]
    assert len(lost) == 1 and url in lost[0].getMessage()
    assert not remote.available
    assert remote.pending_keys() == ["2" * 64, "3" * 64]
    assert all(cache.get_generation(k) is not None for k in made)  # nothing lost locally

    # a new server on the same port (empty: what the old one held is gone with it)
    own_s3(int(endpoint.rsplit(":", 1)[1]))
    bucket_on(endpoint, parse_remote(url).bucket)
    later = open_remote(url, pending=pending)
    assert later.call(later.push_many(later.pending_keys(), cache)) == 2
    assert later.pending_keys() == []
    fresh = ResponseCache(MemoryCache(), remote=open_remote(url))
    assert fresh.get_generation("2" * 64) is not None
    assert fresh.get_generation("3" * 64) is not None


def test_closing_right_after_a_hand_off_leaves_no_coroutine_unstarted() -> None:
    """A batch handed to the remote's loop just before it is closed (a second Ctrl-C at
    the start of a run) is cancelled, not dropped unstarted: no "never awaited"."""
    looper = _LoopThread()
    gate, blocked = threading.Event(), threading.Event()
    looper.loop.call_soon_threadsafe(lambda: (blocked.set(), gate.wait()))
    blocked.wait()  # the loop is busy: the hand-off and the close queue up behind it

    async def batch() -> None:
        await asyncio.Event().wait()

    handed = looper.submit(batch())
    opener = threading.Timer(0.2, gate.set)  # after close() has queued its stop
    opener.start()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        looper.close()
        gc.collect()
    opener.join()
    assert looper.loop.is_closed() and handed.cancelled()
    assert [str(w.message) for w in seen if "never awaited" in str(w.message)] == []
