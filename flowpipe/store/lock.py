"""``RECIPE.lock.json``: each node's key and image hashes, committed beside the recipe.

The one module that writes and reads lock files. A frozen run reads the lock
strictly (a node whose key differs is a miss); a run that writes a lock reads the old
one leniently, so a short run keeps what it did not redo (docs/ci.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from flowpipe.errors import FrozenCacheMissError, OutputError
from flowpipe.store.jsonread import read_json
from flowpipe.store.outputs import OutputWriter

__all__ = ["FORMAT", "Lock", "LockEntry", "check_lock", "lock_path", "read_lock", "write_lock"]

FORMAT = 1


@dataclass(frozen=True, slots=True)
class LockEntry:
    """One finished node: its request key and the SHA-256 of each image."""

    key: str
    images: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    """A lock file: the recipe's name, the backend kind of its keys, entries by node."""

    recipe: str | None
    backend: str | None
    nodes: Mapping[str, LockEntry] = field(default_factory=lambda: MappingProxyType({}))

    def node_keys(self) -> dict[str, str]:
        """The locked key of every node."""
        return {nid: entry.key for nid, entry in self.nodes.items()}

    def updated(self, order: Iterable[str], finished: Mapping[str, LockEntry]) -> Lock:
        """This lock with ``finished`` entries replaced, in ``order``; others kept."""
        nodes = {}
        for nid in order:
            entry = finished.get(nid) or self.nodes.get(nid)
            if entry is not None:
                nodes[nid] = entry
        return Lock(recipe=self.recipe, backend=self.backend, nodes=MappingProxyType(nodes))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "recipe": self.recipe,
            "backend": self.backend,
            "nodes": {
                nid: {"key": e.key, "images": list(e.images)} for nid, e in self.nodes.items()
            },
        }


def lock_path(recipe: Path) -> Path:
    """``campaign.yaml`` locks into ``campaign.lock.json`` beside it."""
    return recipe.with_name(f"{recipe.stem}.lock.json")


def write_lock(path: Path, lock: Lock) -> Path:
    """Write the lock file atomically (unchanged bytes are not rewritten)."""
    return OutputWriter(path.parent).write_json(path.name, lock.to_json())


def read_lock(path: Path) -> Lock:
    """The lock at ``path``; a missing or unreadable lock is a frozen cache miss."""
    if not path.exists():
        raise FrozenCacheMissError(
            f"no lock file {path.name}",
            hint="run once with requests allowed and commit the lock file",
            option="frozen",
        )
    try:
        data = read_json(path)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        nodes = {
            str(nid): LockEntry(str(entry["key"]), tuple(str(i) for i in entry.get("images", ())))
            for nid, entry in data["nodes"].items()
        }
        recipe, backend = data.get("recipe"), data.get("backend")
    except (OutputError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FrozenCacheMissError(f"cannot read {path.name}: {exc}", option="frozen") from exc
    return Lock(
        recipe=recipe if isinstance(recipe, str) else None,
        backend=backend if isinstance(backend, str) else None,
        nodes=MappingProxyType(nodes),
    )


def check_lock(lock: Lock, lock_name: str, nid: str, key: str) -> None:
    """Under a frozen run: a node whose key is not the locked one is a miss."""
    entry = lock.nodes.get(nid)
    if entry is None or entry.key != key:
        raise FrozenCacheMissError(
            f"node '{nid}' changed since {lock_name} was written",
            hint="regenerate it with requests allowed, then commit the new lock file",
            option="frozen",
        )
