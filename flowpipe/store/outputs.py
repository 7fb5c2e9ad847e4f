"""Files people keep: written atomically and only inside the output folder.

A crash, a full disk or a kill leaves either the old file or the new one, never a
partial JPEG or half a manifest.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from flowpipe.errors import OutputError
from flowpipe.names import folder_name

__all__ = ["JsonStream", "OutputWriter", "atomic_text", "atomic_write", "default_out_dir",
           "dump_json", "dump_streamed"]


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


@dataclass(frozen=True, slots=True)
class JsonStream:
    """A JSON array (or, ``keyed``, an object of (key, value) pairs) whose items are
    written as they come, so a file of any length is never whole in memory."""

    items: Iterator[Any]
    keyed: bool = False


def dump_streamed(data: Any, write: Callable[[str], object]) -> None:
    """Write ``data`` as ``dump_json`` would (less its final newline), where each
    ``JsonStream`` in it is written an item at a time."""
    _dump(data, 0, write)


def _dump(value: object, depth: int, write: Callable[[str], object]) -> None:
    pad = "  " * depth
    if isinstance(value, dict) and _streams(value):
        keyed, items = True, iter(value.items())
    elif isinstance(value, JsonStream):
        keyed, items = value.keyed, value.items
    else:  # json's own layout, indented to where it stands
        write(json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + pad))
        return
    first = True
    for item in items:
        write(("{" if keyed else "[") if first else ",")
        write("\n" + pad + "  ")
        first = False
        if keyed:
            key, inner = item
            write(json.dumps(key, ensure_ascii=False) + ": ")
        else:
            inner = item
        _dump(inner, depth + 1, write)
    write(("{}" if keyed else "[]") if first else "\n" + pad + ("}" if keyed else "]"))


def _streams(value: dict[str, Any]) -> bool:
    """Whether a ``JsonStream`` is somewhere in ``value``'s objects."""
    return any(isinstance(v, JsonStream) or (isinstance(v, dict) and _streams(v))
               for v in value.values())


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


@contextlib.contextmanager
def atomic_text(path: Path, *, keep_same: bool = False) -> Iterator[IO[str]]:
    """Write ``path`` (UTF-8 text) a piece at a time, as ``atomic_write`` writes it whole:
    through a temp file in the same folder, fsync-ed, then renamed over ``path``.

    For a file too large to build in memory first (a long run's run.json, manifest).
    ``keep_same``: a file that already holds exactly these bytes is left as it is (its
    mtime too), as ``OutputWriter.write_bytes`` leaves it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
            fh.flush()
            if keep_same and _same_file(tmp, path):
                os.unlink(tmp)
                return
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _output_error(path, exc) from exc
        raise


def _same_file(new: str, old: Path) -> bool:
    try:
        return filecmp.cmp(new, old, shallow=False)
    except OSError:  # no old file
        return False


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
