"""Fixtures every test folder may use."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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


CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, as tests/report/test_browser.py uses
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium; skipped without it, except under CI=true where that fails."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def artifacts_dir() -> Path:
    """test-artifacts/ at the repository root (gitignored)."""
    folder = Path(__file__).resolve().parents[1] / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder
