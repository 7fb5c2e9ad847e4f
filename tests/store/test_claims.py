"""Cross-process claims: one sender per key, stale claims of dead processes taken over."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from flowpipe.errors import CacheError
from flowpipe.store.claims import KeyClaims

UNREADABLE_GRACE = 10.0  # seconds; what docs/caching.md promises


def test_second_claimer_waits_until_release(tmp_path: Path) -> None:
    a, b = KeyClaims(tmp_path), KeyClaims(tmp_path)
    assert a.try_claim("k")
    assert not b.try_claim("k")
    a.release("k")
    assert b.try_claim("k")


def test_claim_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / "k").write_text(f"{socket.gethostname()} {dead.stdout.strip()}\n")
    assert KeyClaims(tmp_path).try_claim("k")


def test_old_claim_is_stale_even_if_its_owner_lives(tmp_path: Path) -> None:
    (tmp_path / "k").write_text(f"elsewhere {os.getpid()}\n")
    claims = KeyClaims(tmp_path, stale_after=60)
    assert not claims.try_claim("k")
    old = time.time() - 120
    os.utime(tmp_path / "k", (old, old))
    assert claims.try_claim("k")


def test_release_all_and_foreign_release_is_a_no_op(tmp_path: Path) -> None:
    a, b = KeyClaims(tmp_path), KeyClaims(tmp_path)
    assert a.try_claim("x") and a.try_claim("y")
    b.release("x")  # not b's claim: stays
    assert (tmp_path / "x").exists()
    a.release_all()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("content", ["", "garbage", "host-without-pid", "\x00\x00"])
def test_an_unreadable_claim_is_stale_after_a_short_grace(tmp_path: Path, content: str) -> None:
    """A claim with no owner to ask is not waited on for the long stale time."""
    (tmp_path / "k").write_text(content)
    claims = KeyClaims(tmp_path)
    assert not claims.try_claim("k")  # just written: perhaps its writer is still at it
    old = time.time() - UNREADABLE_GRACE - 1
    os.utime(tmp_path / "k", (old, old))
    assert claims.try_claim("k")
    assert (tmp_path / "k").read_text().strip() == f"{socket.gethostname()} {os.getpid()}"


def test_a_claim_appears_whole_and_a_full_disk_leaves_nothing(
    tmp_path: Path, full_disk: Callable[[Path], None]
) -> None:
    """No claim file may exist before its content does: a failed write leaves nothing."""
    full_disk(tmp_path)
    claims = KeyClaims(tmp_path)
    with pytest.raises(CacheError) as caught:
        claims.try_claim("k")
    assert str(caught.value).startswith(f"disk full in the cache folder {tmp_path.parent}")
    assert list(tmp_path.iterdir()) == []


def test_claims_fall_back_to_exclusive_create_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    a, b = KeyClaims(tmp_path), KeyClaims(tmp_path)
    assert a.try_claim("k") and not b.try_claim("k")
    assert (tmp_path / "k").read_text().strip() == f"{socket.gethostname()} {os.getpid()}"
    a.release_all()
    assert list(tmp_path.iterdir()) == []
