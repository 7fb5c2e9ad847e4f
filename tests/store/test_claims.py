"""Cross-process claims: one sender per key, stale claims of dead processes taken over."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from flowpipe.store.claims import KeyClaims


def test_second_claimer_waits_until_release(tmp_path: Path) -> None:
    a, b = KeyClaims(tmp_path), KeyClaims(tmp_path)
    assert a.try_claim("k")
    assert not b.try_claim("k")
    a.release("k")
    assert b.try_claim("k")


def test_claim_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    import socket

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
