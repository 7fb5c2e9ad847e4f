"""The simulator's per-request memory: counts and owners of the most recent keys only."""

from __future__ import annotations

from flowpipe.sim.recent import RecentCounts, RecentOwners


def test_counts_say_how_often_a_key_was_seen_before() -> None:
    counts = RecentCounts(size=8)
    assert [counts.bump("a", 1), counts.bump("a", 1), counts.bump("a", 2)] == [0, 1, 0]


def test_counts_keep_the_most_recently_used_keys() -> None:
    counts = RecentCounts(size=2)
    counts.bump("a")
    counts.bump("b")
    counts.bump("a")  # a is now more recent than b
    counts.bump("c")  # b goes
    assert len(counts) == 2
    assert counts.bump("a") == 2
    assert counts.bump("b") == 0  # forgotten: seen as new


def test_owners_of_recent_images() -> None:
    owners = RecentOwners(size=2)
    owners.add("ab" * 32, "a@x.io")
    owners.add("ab" * 32, "b@x.io")
    assert owners.made("ab" * 32, "a@x.io") and owners.made("ab" * 32, "b@x.io")
    assert not owners.made("ab" * 32, "c@x.io") and not owners.made("cd" * 32, "a@x.io")
    owners.add("cd" * 32, "a@x.io")
    owners.add("ef" * 32, "a@x.io")  # ab is the least recent: it goes
    assert len(owners) == 2 and not owners.made("ab" * 32, "a@x.io")
