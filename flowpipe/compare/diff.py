"""Two sides, node by node: what changed (prompt words, seed, model, references) and the
images before and after; nodes whose key and images are the same are folded away."""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from flowpipe.compare.sides import Side, SideImage, SideNode, load_side
from flowpipe.errors import FlowpipeError
from flowpipe.store.lock import read_lock
from flowpipe.store.responses import existing_cache

__all__ = ["Change", "Comparison", "NodeDiff", "compare", "word_diff"]

_FIELDS = (("prompt", "prompt"), ("model", "model"), ("seed", "seed"),
           ("aspect_ratio", "aspect ratio"), ("count", "count"))
_WORDS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True, slots=True)
class Change:
    """One field that differs: its label and the old and new values as text."""

    label: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class NodeDiff:
    """A node on both sides (or one): ``state`` is changed, added, removed or same."""

    id: str
    state: str
    old: SideNode | None
    new: SideNode | None
    changes: tuple[Change, ...]
    prompt_ops: tuple[tuple[str, str], ...]  # ("same" | "del" | "ins", text) of the prompt

    def pairs(self) -> Iterator[tuple[SideImage | None, SideImage | None]]:
        """Old and new image of each index."""
        old = self.old.images if self.old else ()
        new = self.new.images if self.new else ()
        for i in range(max(len(old), len(new))):
            yield (old[i] if i < len(old) else None, new[i] if i < len(new) else None)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every node of both sides, in the new side's order, then nodes only the old has."""

    old: Side
    new: Side
    nodes: tuple[NodeDiff, ...]

    def changed(self) -> tuple[NodeDiff, ...]:
        return tuple(n for n in self.nodes if n.state != "same")

    def same(self) -> tuple[NodeDiff, ...]:
        return tuple(n for n in self.nodes if n.state == "same")


def word_diff(old: str, new: str) -> tuple[tuple[str, str], ...]:
    """The prompt's words marked kept, deleted or inserted (whitespace kept as is)."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    ops: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            ops.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            ops.append(("ins", "".join(b[j1:j2])))
    return tuple(ops)


def _refs(node: SideNode) -> str:
    return ", ".join(f"{text}{f' ({sha[:12]})' if sha else ''}" for text, sha in node.references)


def _refs_differ(old: SideNode, new: SideNode, texts: bool) -> bool:
    """References differ in their bytes, or (when both sides know them) in their texts."""
    if not (old.references and new.references):
        return False
    if [sha for _, sha in old.references] != [sha for _, sha in new.references]:
        return True
    return texts and [t for t, _ in old.references] != [t for t, _ in new.references]


def _diff(nid: str, old: SideNode | None, new: SideNode | None, texts: bool) -> NodeDiff:
    if old is None or new is None:
        return NodeDiff(nid, "added" if old is None else "removed", old, new, (), ())
    changes = [
        Change(label, getattr(old, name) or "", getattr(new, name) or "")
        for name, label in _FIELDS
        if getattr(old, name) is not None and getattr(new, name) is not None
        and getattr(old, name) != getattr(new, name)
    ]
    if _refs_differ(old, new, texts):
        changes.append(Change("references", _refs(old), _refs(new)))
    same_images = [i.sha256 for i in old.images] == [i.sha256 for i in new.images]
    # Without images on either side (waiting for review, say), a key is only provisional:
    # the same nothing on both sides, and no field changed, is the same node.
    same = (old.key == new.key and old.key is not None) or (not changes and same_images)
    ops = word_diff(old.prompt or "", new.prompt or "") if any(
        c.label == "prompt" for c in changes) else ()
    if not same and not changes and old.key != new.key:
        changes.append(Change("request key", (old.key or "unknown")[:16],
                              (new.key or "not known until upstream images exist")[:16]))
    return NodeDiff(nid, "same" if same else "changed", old, new, tuple(changes), ops)


def compare(a: Path, b: Path, *, cache_dir: Path | None = None,
            variables: Mapping[str, object] | None = None, backend: str | None = None,
            use_cache: bool = True) -> Comparison:
    """Compare ``a`` (old) with ``b`` (new): output folders, a lock file or a recipe."""
    kind = backend or _backend_of(a) or _backend_of(b) or "sim"
    with existing_cache(cache_dir) if use_cache else contextlib.nullcontext() as cache:
        old = load_side(a, cache, variables=variables or {}, backend=kind)
        new = load_side(b, cache, variables=variables or {}, backend=kind)
    order = list(new.nodes) + [n for n in old.nodes if n not in new.nodes]
    texts = "lock" not in (old.kind, new.kind)  # a lock's cached request keeps no texts
    return Comparison(old, new, tuple(_diff(n, old.nodes.get(n), new.nodes.get(n), texts)
                                      for n in order))


def _backend_of(path: Path) -> str | None:
    """The backend kind a lock file's keys were made for (a recipe's side uses it)."""
    if not Path(path).name.endswith(".lock.json"):
        return None
    try:
        return read_lock(Path(path)).backend
    except FlowpipeError:  # load_side reports an unreadable lock properly
        return None
