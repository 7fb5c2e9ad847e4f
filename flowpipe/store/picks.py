"""``RECIPE.picks.yaml``: which image of each node a reviewer picked, and which they rejected.

The one module that reads and writes picks files (docs/review.md). The file sits beside
the recipe and is committed with it, so it is plain YAML a person can read, edit and
merge: one entry per node, in the recipe's order, one fact per line::

    hero:
      image: 2
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      note: "warmer light, keep the ridge"
    closeup[angle=side]:
      rejected:
        0: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752

``sha256`` is the hash of the image as the API made it (the manifest's ``sha256``,
what the lock records and keys hash), not of the file, whose provenance packet holds
the flowpipe version. A pick or rejection names its image twice (index and hash) so
that a re-made node is noticed: the pick is then stale, never moved to other bytes.

Reading is strict and says ``file:line:col`` for every problem; writing is atomic and,
through ``update_picks``, serialised with a lock on the recipe's folder, so two
writers (two browser tabs, two review servers) never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import yaml

from flowpipe.errors import Location, PicksError
from flowpipe.store.outputs import atomic_write

__all__ = [
    "Pick",
    "Picks",
    "dump_picks",
    "parse_picks",
    "picks_path",
    "read_picks",
    "update_picks",
    "write_picks",
]

_HEX = re.compile(r"[0-9a-f]{64}")
_IMAGE_NUMBER = re.compile(r"[0-9]{1,9}")  # not isdigit(): '²' is a digit to it, not to int()
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\[[A-Za-z0-9_.=,+-]*\])?")
_FIELDS = ("image", "sha256", "note", "rejected")
_MAX_NOTE = 2000
_THREAD_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Pick:
    """One node's review: the picked image (``image`` and its ``sha256``), a note, and the
    rejected images (index -> sha256). Any part may be absent."""

    node: str
    image: int | None = None
    sha256: str | None = None
    note: str | None = None
    rejected: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    location: Location | None = field(default=None, compare=False)

    def stale(self, images: Iterable[str]) -> bool:
        """Whether the pick names bytes the node's images (API hashes, in order) lack."""
        shas = list(images)
        assert self.image is not None
        return self.image >= len(shas) or shas[self.image] != self.sha256

    @property
    def empty(self) -> bool:
        return self.image is None and not self.note and not self.rejected


@dataclass(frozen=True, slots=True)
class Picks:
    """A picks file: entries by node id, in file order."""

    path: Path
    entries: Mapping[str, Pick] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, node: str) -> Pick | None:
        return self.entries.get(node)

    def with_entry(self, pick: Pick) -> Picks:
        """These picks with ``pick`` replacing the node's entry (removed when empty)."""
        entries = dict(self.entries)
        if pick.empty:
            entries.pop(pick.node, None)
        else:
            entries[pick.node] = pick
        return Picks(self.path, MappingProxyType(entries))

    def pick(self, node: str, image: int, sha256: str) -> Picks:
        old = self.entries.get(node) or Pick(node)
        rejected = {i: s for i, s in old.rejected.items() if i != image}
        return self.with_entry(replace(old, image=image, sha256=sha256,
                                       rejected=MappingProxyType(rejected)))

    def unpick(self, node: str) -> Picks:
        old = self.entries.get(node) or Pick(node)
        return self.with_entry(replace(old, image=None, sha256=None))

    def reject(self, node: str, image: int, sha256: str) -> Picks:
        old = self.entries.get(node) or Pick(node)
        if old.image == image:
            old = replace(old, image=None, sha256=None)
        rejected = dict(old.rejected)
        rejected[image] = sha256
        return self.with_entry(replace(old, rejected=MappingProxyType(dict(sorted(
            rejected.items())))))

    def unreject(self, node: str, image: int) -> Picks:
        old = self.entries.get(node) or Pick(node)
        rejected = {i: s for i, s in old.rejected.items() if i != image}
        return self.with_entry(replace(old, rejected=MappingProxyType(rejected)))

    def annotate(self, node: str, note: str | None) -> Picks:
        old = self.entries.get(node) or Pick(node)
        text = (note or "").strip()[:_MAX_NOTE] or None
        return self.with_entry(replace(old, note=text))


def picks_path(recipe: Path) -> Path:
    """``campaign.yaml`` keeps its picks in ``campaign.picks.yaml`` beside it."""
    return recipe.with_name(f"{recipe.stem}.picks.yaml")


def read_picks(path: Path) -> Picks:
    """The picks at ``path``; none when the file does not exist. PicksError if malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Picks(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise PicksError(f"{path.name}: cannot be read: {exc}",
                         Location(str(path), 1, 1)) from None
    return parse_picks(text, path)


def parse_picks(text: str, path: Path) -> Picks:
    """Parse a picks file's text; every problem is a PicksError at its line and column."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = Location(str(path), mark.line + 1, mark.column + 1) if mark else None
        raise PicksError(f"not valid YAML: {exc.problem}", where) from None
    if root is None:
        return Picks(path)
    if not isinstance(root, yaml.MappingNode):
        raise PicksError("expected a mapping of node ids to picks", _at(path, root),
                         hint="write 'NODE_ID: {image: N, sha256: HEX}'")
    entries: dict[str, Pick] = {}
    for key, value in root.value:
        node = _scalar(path, key, "a node id")
        if node in entries:
            raise PicksError(f"node {node!r} is listed twice", _at(path, key),
                             hint="keep one entry per node")
        entries[node] = _entry(path, node, key, value)
    return Picks(path, MappingProxyType(entries))


def _at(path: Path, node: yaml.Node) -> Location:
    return Location(str(path), node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(path: Path, node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise PicksError(f"expected {what}", _at(path, node))
    return str(node.value)


def _index(path: Path, node: yaml.Node, what: str) -> int:
    text = _scalar(path, node, what)
    if not _IMAGE_NUMBER.fullmatch(text):
        raise PicksError(f"{what}: expected an image number (0, 1, ...), got {text!r}",
                         _at(path, node), hint="image numbers start at 0")
    return int(text)


def _hex(path: Path, node: yaml.Node, what: str) -> str:
    text = _scalar(path, node, what)
    if not _HEX.fullmatch(text):
        raise PicksError(f"{what}: expected 64 lowercase hex digits", _at(path, node),
                         hint="copy it from the manifest or `flowpipe inspect`")
    return text


def _entry(path: Path, node: str, key: yaml.Node, value: yaml.Node) -> Pick:
    if not isinstance(value, yaml.MappingNode):
        raise PicksError(f"node {node!r}: expected a mapping such as "
                         "{image: N, sha256: HEX}", _at(path, value))
    found: dict[str, yaml.Node] = {}
    for k, v in value.value:
        name = _scalar(path, k, "a field name")
        if name not in _FIELDS:
            raise PicksError(f"node {node!r}: unknown field {name!r}", _at(path, k),
                             hint=f"fields: {', '.join(_FIELDS)}")
        if name in found:
            raise PicksError(f"node {node!r}: field {name!r} twice", _at(path, k))
        found[name] = v
    if ("image" in found) != ("sha256" in found):
        raise PicksError(f"node {node!r}: a pick needs both 'image' and 'sha256'",
                         _at(path, key), hint="pick again with `flowpipe review`")
    rejected: dict[int, str] = {}
    if "rejected" in found:
        items = found["rejected"]
        if not isinstance(items, yaml.MappingNode):
            raise PicksError(f"node {node!r}: rejected: expected a mapping of image number "
                             "to sha256", _at(path, items))
        for k, v in items.value:
            rejected[_index(path, k, "rejected")] = _hex(path, v, f"rejected image {k.value}")
    note = found.get("note")
    return Pick(
        node=node,
        image=_index(path, found["image"], f"node {node!r}: image") if "image" in found else None,
        sha256=_hex(path, found["sha256"], f"node {node!r}: sha256") if "sha256" in found
        else None,
        note=_scalar(path, note, "a note") if note is not None else None,
        rejected=MappingProxyType(dict(sorted(rejected.items()))),
        location=_at(path, key),
    )


_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _quoted(text: str) -> str:
    """A double-quoted YAML scalar (JSON's escapes, and every character YAML may fold)."""
    body = json.dumps(text, ensure_ascii=False)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)


def _key(node: str) -> str:
    return node if _PLAIN_KEY.fullmatch(node) and node not in ("null", "true", "false") \
        else _quoted(node)


def dump_picks(picks: Picks, order: Iterable[str] = ()) -> str:
    """The file's text: nodes in ``order`` (the recipe's) first, any others after."""
    ordered = [n for n in dict.fromkeys(order) if n in picks.entries]
    ordered += [n for n in picks.entries if n not in ordered]
    lines = [
        "# Picks for this recipe: the image a reviewer chose per node (docs/review.md).",
        "# Written by `flowpipe review`; fine to edit and merge by hand.",
    ]
    for node in ordered:
        pick = picks.entries[node]
        lines.append(f"{_key(node)}:")
        if pick.image is not None:
            lines += [f"  image: {pick.image}", f"  sha256: {pick.sha256}"]
        if pick.note:
            lines.append(f"  note: {_quoted(pick.note)}")
        if pick.rejected:
            lines.append("  rejected:")
            lines += [f"    {i}: {sha}" for i, sha in sorted(pick.rejected.items())]
    return "\n".join(lines) + "\n"


def write_picks(path: Path, picks: Picks, order: Iterable[str] = ()) -> None:
    """Write ``picks`` to ``path`` atomically (a reader sees the old file or the new)."""
    atomic_write(path, dump_picks(picks, order).encode("utf-8"))


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Exclusive across threads and, where flock exists, across processes."""
    with _THREAD_LOCK:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one process at a time
            yield
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def update_picks(path: Path, change: Callable[[Picks], Picks], order: Iterable[str] = ()) -> Picks:
    """Read the file as it is now, apply ``change``, write it back; all under one lock.

    Each writer sends one change, not a whole file, so concurrent writers compose.
    """
    with _locked(path.parent):
        changed = change(read_picks(path))
        write_picks(path, changed, order)
        return changed
