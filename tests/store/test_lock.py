"""Lock files: where they live, how they are written and how a frozen run reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowpipe.errors import FrozenCacheMissError
from flowpipe.store.lock import (
    Lock,
    LockEntry,
    check_lock,
    lock_path,
    lock_place,
    read_lock,
    write_lock,
)


def test_lock_sits_beside_the_recipe() -> None:
    assert lock_path(Path("a/campaign.yaml")) == Path("a/campaign.lock.json")


def test_read_lock_gives_keys_by_node(tmp_path: Path) -> None:
    lock = tmp_path / "r.lock.json"
    write_lock(lock, Lock(recipe="r", backend="sim", nodes={"hero": LockEntry("k1")}))
    locked = read_lock(lock)
    assert {nid: entry.key for nid, entry in locked.nodes.items()} == {"hero": "k1"}
    check_lock(locked, lock.name, "hero", "k1")
    with pytest.raises(FrozenCacheMissError, match=r"'hero' changed since r\.lock\.json"):
        check_lock(locked, lock.name, "hero", "k2")
    with pytest.raises(FrozenCacheMissError, match="'new' changed"):
        check_lock(locked, lock.name, "new", "k3")


@pytest.mark.parametrize(
    "text", ["{not json", "[]", '{"nodes": {"a": 3}}', '{"nodes": []}'],
    ids=["garbage", "list", "entry-not-object", "nodes-not-mapping"],
)
def test_unreadable_lock_is_a_frozen_miss_not_a_crash(tmp_path: Path, text: str) -> None:
    lock = tmp_path / "r.lock.json"
    lock.write_text(text)
    with pytest.raises(FrozenCacheMissError, match=r"cannot read r\.lock\.json"):
        read_lock(lock)


def test_missing_lock_says_to_run_once(tmp_path: Path) -> None:
    with pytest.raises(FrozenCacheMissError, match="no lock file"):
        read_lock(tmp_path / "none.lock.json")


def test_a_lock_records_requests_and_the_api_and_reads_old_locks_as_unknown(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "r.lock.json"
    request = {"prompt": "p", "model": "imagen-4", "count": 1}
    write_lock(lock, Lock(recipe="r", backend="sim", api="2025-11",
                          nodes={"a": LockEntry("k1", ("s1",), request), "b": LockEntry("k2")}))
    read = read_lock(lock)
    assert read.api == "2025-11"
    assert dict(read.nodes["a"].request or {}) == request
    assert read.nodes["b"].request is None
    assert "request" not in json.loads(lock.read_text())["nodes"]["b"]
    old = tmp_path / "old.lock.json"  # as every lock before issue 13 was written
    old.write_text('{"format": 1, "recipe": "r", "backend": "sim", '
                   '"nodes": {"a": {"key": "k1", "images": ["s1"], "request": 3}}}')
    read_old = read_lock(old)
    assert read_old.api is None and read_old.nodes["a"].request is None


@dataclass(frozen=True)
class _Plan:
    """The parts of a plan a lock takes (``flowpipe.store.lock.Planned``)."""

    nodes: dict[str, object]
    name: str = "r"
    backend: str = "sim"
    dialect: str = "2025-11"


def test_merge_keeps_an_unchanged_entry_as_it_was_written() -> None:
    old = Lock(recipe="r", backend="sim", nodes={"a": LockEntry("k1", ("s1",)),
                                                 "gone": LockEntry("k9")})
    plan = _Plan(dict.fromkeys(["a", "b"]))
    new = old.merge(plan, {"a": LockEntry("k1", ("s1",), {"prompt": "p"}),
                           "b": LockEntry("k2", ("s2",), {"prompt": "q"})})
    assert new.nodes["a"].request is None  # same key and images: the old text stays
    assert new.nodes["b"].request == {"prompt": "q"}
    assert list(new.nodes) == ["a", "b"]  # a node the plan no longer has is dropped
    assert (new.recipe, new.backend, new.api) == ("r", "sim", "2025-11")
    assert not new.same_entries(old)
    assert new.same_entries(new.merge(plan, {}))
    assert not new.same_entries(Lock(recipe="r", backend="useapi", nodes=new.nodes))


def test_merge_drops_the_entries_of_another_backend() -> None:
    """A lock of useapi keys says nothing about a sim run's nodes: only what it finished."""
    old = Lock(recipe="r", backend="useapi", nodes={"a": LockEntry("k1"), "b": LockEntry("k2")})
    new = old.merge(_Plan(dict.fromkeys(["a", "b"])), {"b": LockEntry("k3", ("s3",))})
    assert new.backend == "sim"
    assert dict(new.nodes) == {"b": LockEntry("k3", ("s3",))}
    fresh = Lock(recipe=None, backend=None).merge(_Plan({"a": None}), {"a": LockEntry("k1")})
    assert dict(fresh.nodes) == {"a": LockEntry("k1")}


def test_lock_place_keeps_the_committed_lock_safe(tmp_path: Path) -> None:
    recipe, out = tmp_path / "c.yaml", tmp_path / "out"
    committed = tmp_path / "c.lock.json"
    plain = lock_place(recipe, out, backend="sim", variables=False)
    assert (plain.path, plain.moved) == (committed, None)
    with_vars = lock_place(recipe, out, backend="sim", variables=True)
    assert with_vars.path == out / "c.lock.json"
    assert with_vars.moved == ("the run sets variables, so c.lock.json beside the recipe is "
                               "left as it is")
    assert lock_place(recipe, out, backend="sim", variables=True, update=True).path == committed
    chosen = tmp_path / "elsewhere.json"
    assert lock_place(recipe, out, backend="sim", variables=True, chosen=chosen).path == chosen
    write_lock(committed, Lock(recipe="c", backend="useapi"))
    other = lock_place(recipe, out, backend="sim", variables=False)
    assert other.path == out / "c.lock.json"
    assert other.moved is not None and "the lock's useapi" in other.moved
    assert lock_place(recipe, out, backend="useapi", variables=False).path == committed


def test_the_same_entries_in_another_order_are_the_same() -> None:
    """Reordering steps changes no key: the lock's order alone is no reason to rewrite it."""
    a, b = LockEntry("k1", ("s1",)), LockEntry("k2", ("s2",))
    lock = Lock(recipe="r", backend="sim", nodes={"a": a, "b": b})
    assert lock.same_entries(Lock(recipe="r", backend="sim", nodes={"b": b, "a": a}))
    assert not lock.same_entries(Lock(recipe="r", backend="sim", nodes={"b": b, "a": b}))
    assert not lock.same_entries(Lock(recipe="r", backend="sim", nodes={"b": b}))
