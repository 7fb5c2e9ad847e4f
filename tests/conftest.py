"""Fixtures every test folder may use."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """``full_disk(folder)``: files opened for writing under ``folder`` hit a full disk.

    Opening still creates the file (a full disk usually has inodes left); every write to
    it then fails with ENOSPC, because the descriptor handed back is ``/dev/full``'s.
    Only ``os.open`` is affected (``tempfile`` and flowpipe's claims use it).
    """
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    folders: list[Path] = []
    real_open = os.open

    def fake_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        fd = real_open(path, flags, mode, **kwargs)
        target = Path(os.fsdecode(path)).absolute()
        if flags & (os.O_WRONLY | os.O_RDWR) and any(target.is_relative_to(f) for f in folders):
            os.close(fd)
            return real_open("/dev/full", os.O_WRONLY)
        return fd

    monkeypatch.setattr(os, "open", fake_open)
    return lambda folder: folders.append(Path(folder).absolute())
