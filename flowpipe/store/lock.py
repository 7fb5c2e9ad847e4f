"""``RECIPE.lock.json``: each node's key and image hashes, committed beside the recipe.

The one module that writes and reads lock files. A frozen run reads the lock
strictly (a node whose key differs is a miss); a run that writes a lock reads the old
one leniently, so a short run keeps what it did not redo (docs/ci.md).

Since issue 13 an entry may also hold the canonical ``request`` its key hashes, and the
lock the ``api`` its keys were made for, so ``flowpipe plan`` and ``flowpipe why`` can
say what changed (``flowpipe.why``). Both are optional: a lock written before has
neither and stays valid, a missing field reads as unknown. An entry whose key and
images are unchanged is kept exactly as it was, so re-running an unchanged recipe
(or one whose steps were only reordered) never rewrites a committed lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from flowpipe.errors import FrozenCacheMissError, OutputError
from flowpipe.store.jsonread import read_json
from flowpipe.store.outputs import OutputWriter

__all__ = [
    "FORMAT",
    "Lock",
    "LockEntry",
    "LockPlace",
    "Planned",
    "check_lock",
    "lock_path",
    "lock_place",
    "read_lock",
    "write_lock",
]

FORMAT = 1


@dataclass(frozen=True, slots=True)
class LockEntry:
    """One finished node: its request key, the SHA-256 of each image and (when recorded)
    the canonical request the key hashes (``flowpipe.planner.node_request``)."""

    key: str
    images: tuple[str, ...] = ()
    request: Mapping[str, Any] | None = field(default=None, compare=False)

    def same_result(self, other: LockEntry) -> bool:
        """Same key and same images: nothing about the node changed."""
        return self.key == other.key and self.images == other.images

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "images": list(self.images)}
        if self.request is not None:
            data["request"] = dict(self.request)
        return data


class Planned(Protocol):
    """What a lock takes from a plan (``flowpipe.planner.Plan``; the store sits beside
    the planner and does not import it)."""

    @property
    def name(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def dialect(self) -> str: ...
    @property
    def nodes(self) -> Mapping[str, object]: ...  # in the plan's order


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    """A lock file: the recipe's name, the backend kind (and API dialect) of its keys,
    entries by node. ``api`` None: not recorded (a lock from before issue 13)."""

    recipe: str | None
    backend: str | None
    nodes: Mapping[str, LockEntry] = field(default_factory=lambda: MappingProxyType({}))
    api: str | None = None

    def merge(self, plan: Planned, finished: Mapping[str, LockEntry]) -> Lock:
        """This lock after a run of ``plan`` (recipe, backend and api are the plan's):
        each ``finished`` entry replaces this lock's, unless its key and images are the
        same (then the entry stays as it was written); a node not finished keeps its
        entry; nodes the plan no longer has, and every entry of a lock for another
        backend, are dropped. Entries are in the plan's order."""
        kept = self.nodes if self.backend == plan.backend else {}
        nodes = {}
        for nid in plan.nodes:
            new, old = finished.get(nid), kept.get(nid)
            entry = old if new is None or (old is not None and old.same_result(new)) else new
            if entry is not None:
                nodes[nid] = entry
        return Lock(recipe=plan.name, backend=plan.backend, nodes=MappingProxyType(nodes),
                    api=plan.dialect)

    def same_entries(self, other: Lock) -> bool:
        """The same nodes with the same keys and images, same backend. Their order is not
        compared: reordering steps changes no key, so it rewrites no committed lock."""
        theirs = other.nodes
        return self.backend == other.backend and self.nodes.keys() == theirs.keys() and all(
            entry.same_result(theirs[nid]) for nid, entry in self.nodes.items()
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": FORMAT, "recipe": self.recipe, "backend": self.backend}
        if self.api is not None:
            data["api"] = self.api
        data["nodes"] = {nid: e.to_json() for nid, e in self.nodes.items()}
        return data


def lock_path(recipe: Path) -> Path:
    """``campaign.yaml`` locks into ``campaign.lock.json`` beside it."""
    return recipe.with_name(f"{recipe.stem}.lock.json")


@dataclass(frozen=True, slots=True)
class LockPlace:
    """Where a run writes (and a frozen run reads) its lock, and why it is not the
    committed one beside the recipe (``moved``: None when it is that one)."""

    path: Path
    committed: Path
    moved: str | None = None


def lock_place(
    recipe: Path, out: Path, *, backend: str, variables: bool, chosen: Path | None = None,
    update: bool = False,
) -> LockPlace:
    """The lock a run uses: ``chosen`` if given; else the committed one beside the recipe,
    unless the run deviates from the recipe as committed (it sets ``variables``, or its
    keys are for another ``backend`` than the committed lock's) and was not told to
    ``update`` it: then the lock goes into the output folder. A run never rewrites the
    committed lock by itself.
    """
    committed = lock_path(recipe)
    if chosen is not None:
        return LockPlace(Path(chosen), committed)
    deviation = "the run sets variables" if variables else None
    if deviation is None:
        try:
            locked = read_lock(committed).backend
        except FrozenCacheMissError:  # none, or unreadable: nothing to keep safe
            locked = None
        if locked is not None and locked != backend:
            deviation = f"the run's keys are for the {backend} backend, the lock's {locked}"
    if deviation is None or update:
        return LockPlace(committed, committed)
    return LockPlace(Path(out) / committed.name, committed,
                     f"{deviation}, so {committed.name} beside the recipe is left as it is")


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
        nodes = {str(nid): _entry(entry) for nid, entry in data["nodes"].items()}
        recipe, backend, api = data.get("recipe"), data.get("backend"), data.get("api")
    except (OutputError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FrozenCacheMissError(f"cannot read {path.name}: {exc}", option="frozen") from exc
    return Lock(
        recipe=recipe if isinstance(recipe, str) else None,
        backend=backend if isinstance(backend, str) else None,
        nodes=MappingProxyType(nodes),
        api=api if isinstance(api, str) else None,
    )


def _entry(raw: Mapping[str, Any]) -> LockEntry:
    """One node's entry; a ``request`` that is not an object reads as not recorded."""
    request = raw.get("request")
    return LockEntry(
        str(raw["key"]),
        tuple(str(i) for i in raw.get("images", ())),
        MappingProxyType(dict(request)) if isinstance(request, dict) else None,
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
