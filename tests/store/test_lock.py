"""Lock files: where they live, how they are written and how a frozen run reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowpipe.errors import FrozenCacheMissError
from flowpipe.store.lock import Lock, LockEntry, check_lock, lock_path, read_lock, write_lock


def test_lock_sits_beside_the_recipe() -> None:
    assert lock_path(Path("a/campaign.yaml")) == Path("a/campaign.lock.json")


def test_read_lock_gives_keys_by_node(tmp_path: Path) -> None:
    lock = tmp_path / "r.lock.json"
    write_lock(lock, Lock(recipe="r", backend="sim", nodes={"hero": LockEntry("k1")}))
    locked = read_lock(lock)
    assert locked.node_keys() == {"hero": "k1"}
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
