"""Files people keep: written atomically and only inside the output folder.

A crash, a full disk or a kill leaves either the old file or the new one, never a
partial JPEG or half a manifest.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from flowpipe.errors import OutputError
from flowpipe.names import folder_name

__all__ = ["OutputWriter", "atomic_write", "default_out_dir", "dump_json"]


def _file_mode() -> int:
    """What open() would give a new file: 0666 less the umask (mkstemp gives 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # what mkstemp below names a temp file


def default_out_dir(recipe_name: str) -> Path:
    """``out/<slug of the name>``: a recipe's ``name`` never chooses a folder outside ``out/``.

    ``name: /tmp/x`` gives ``out/tmp-x``, ``name: ../../x`` gives ``out/x``, a name with
    nothing portable in it gives ``out/recipe``, ``name: CON`` ``out/CON_``
    (flowpipe.names.folder_name has the rules).
    """
    return Path("out") / folder_name(recipe_name, empty="recipe")


def dump_json(data: Any) -> bytes:
    """Stable, readable JSON: the same data gives the same bytes."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _output_error(path, exc) from exc


def _output_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(
            f"disk full while writing {path}",
            hint="free some space and run again; finished images are in the cache",
        )
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


class OutputWriter:
    """Writes images and JSON under one folder, refusing any path that leaves it."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self._root = self.out.resolve()

    @property
    def root(self) -> Path:
        """The output folder, resolved: every path this writer gives is inside it."""
        return self._root

    def path_for(self, relative: PurePosixPath | str) -> Path:
        rel = PurePosixPath(relative)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise OutputError(f"refusing to write outside the output folder: {relative}")
        target = (self._root / Path(*rel.parts)).resolve()
        if not target.is_relative_to(self._root):
            raise OutputError(f"refusing to write outside the output folder: {relative}")
        return target

    def write_bytes(self, relative: PurePosixPath | str, data: bytes) -> Path:
        """Write unless the file already holds exactly these bytes (keeps mtimes stable)."""
        target = self.path_for(relative)
        with contextlib.suppress(OSError):
            if target.stat().st_size == len(data) and target.read_bytes() == data:
                return target
        atomic_write(target, data)
        return target

    def write_json(self, relative: str, data: Any) -> Path:
        return self.write_bytes(relative, dump_json(data))

    def sweep_temp_files(self) -> int:
        """Delete the temp files a killed writer left behind; returns how many.

        Only names that ``atomic_write`` makes are touched. Call it before writing,
        while no other process writes this folder.
        """
        removed = 0
        for folder, _, names in os.walk(self._root):
            for name in names:
                if _TEMP_NAME.match(name):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(folder, name))
                        removed += 1
        return removed
