"""Output files: atomic, inside the folder, clear errors on a full disk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from flowpipe.errors import OutputError
from flowpipe.store import OutputWriter, atomic_write


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.bin"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["b.bin"]  # no temp files left


def test_full_disk_keeps_old_file_and_names_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "img.jpg"
    atomic_write(target, b"old bytes")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match="disk full"):
        atomic_write(target, b"new bytes")
    assert target.read_bytes() == b"old bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["img.jpg"]


@pytest.mark.parametrize(
    "relative",
    ["../escape.jpg", "/etc/passwd", "a/../../escape.jpg", ""],
    ids=["parent", "absolute", "nested-parent", "empty"],
)
def test_writer_refuses_paths_outside(tmp_path: Path, relative: str) -> None:
    writer = OutputWriter(tmp_path / "out")
    with pytest.raises(OutputError, match="outside the output folder"):
        writer.write_bytes(relative, b"x")
    assert not (tmp_path / "escape.jpg").exists()


def test_writer_refuses_symlink_escape(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    with pytest.raises(OutputError):
        OutputWriter(out).write_bytes("link/x.jpg", b"x")


def test_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    writer = OutputWriter(tmp_path)
    path = writer.write_bytes("s/v/0.jpg", b"same")
    os.utime(path, (1, 1))
    writer.write_bytes("s/v/0.jpg", b"same")
    assert path.stat().st_mtime == 1
    writer.write_bytes("s/v/0.jpg", b"different")
    assert path.read_bytes() == b"different"


def test_sweep_removes_only_the_temp_files_atomic_write_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = OutputWriter(tmp_path)

    def killed(path: str, data: bytes) -> None:  # the rename never happens
        raise KeyboardInterrupt

    target = tmp_path / "hero" / "default" / "0.jpg"
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"image bytes")
    monkeypatch.undo()
    left = [p.name for p in target.parent.iterdir()]
    assert len(left) == 1 and left[0].startswith(".0.jpg.") and left[0].endswith(".tmp")
    (tmp_path / "mine.tmp").write_text("a file of the user's")
    assert writer.sweep_temp_files() == 1
    assert list(target.parent.iterdir()) == []
    assert (tmp_path / "mine.tmp").exists()
