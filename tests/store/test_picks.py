"""RECIPE.picks.yaml: read strictly with file:line:col, written stably and atomically,
and kept whole under concurrent writers."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
import yaml

from flowpipe.errors import PicksError
from flowpipe.store.picks import (
    Pick,
    Picks,
    dump_picks,
    parse_picks,
    picks_path,
    read_picks,
    update_picks,
    write_picks,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_picks_live_beside_the_recipe() -> None:
    assert picks_path(Path("x/campaign.yaml")) == Path("x/campaign.picks.yaml")


def test_a_missing_file_is_no_picks(tmp_path: Path) -> None:
    assert read_picks(tmp_path / "r.picks.yaml").entries == {}


def test_round_trip_in_the_recipes_order_with_odd_text(tmp_path: Path) -> None:
    path = tmp_path / "r.picks.yaml"
    note = 'warm "light"\u2028\x01 # not a comment'
    picks = (Picks(path).pick("hero", 2, A).annotate("hero", note)
             .reject("closeup[angle=side]", 0, B).reject("odd: id #x", 3, C))
    write_picks(path, picks, order=["closeup[angle=side]", "hero"])
    text = path.read_text()
    assert text.index("closeup[angle=side]:") < text.index("hero:")
    assert read_picks(path).entries == picks.entries
    assert yaml.safe_load(text)["hero"] == {
        "image": 2, "sha256": A, "note": 'warm "light"\u2028\x01 # not a comment'}
    again = tmp_path / "again.picks.yaml"
    write_picks(again, read_picks(path), order=["closeup[angle=side]", "hero"])
    assert again.read_bytes() == path.read_bytes()  # stable: the same picks, the same bytes


def test_one_node_per_entry_and_one_fact_per_line() -> None:
    picks = Picks(Path("r.picks.yaml")).pick("hero", 1, A).pick("poster", 0, B)
    assert dump_picks(picks, ["hero", "poster"]).splitlines()[2:] == [
        "hero:", "  image: 1", f"  sha256: {A}", "poster:", "  image: 0", f"  sha256: {B}",
    ]


def test_picking_and_rejecting_move_an_image_between_the_two() -> None:
    picks = Picks(Path("p")).reject("hero", 1, A).pick("hero", 1, A)
    hero = picks.get("hero")
    assert hero is not None and hero.image == 1 and dict(hero.rejected) == {}
    picks = picks.reject("hero", 1, A)
    hero = picks.get("hero")
    assert hero is not None and hero.image is None and dict(hero.rejected) == {1: A}
    assert picks.unreject("hero", 1).get("hero") is None  # nothing left: no entry


def test_a_pick_is_stale_when_its_bytes_are_not_the_nodes_image_any_more() -> None:
    pick = Pick("hero", image=1, sha256=A)
    assert not pick.stale([B, A])
    assert pick.stale([A, B])  # the same bytes at another index: not silently moved
    assert pick.stale([A])


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        pytest.param("hero: [1]\n", "1:7", "expected a mapping", id="not-a-mapping"),
        pytest.param("hero:\n  image: 1\n", "1:1", "needs both 'image' and 'sha256'",
                     id="image-without-hash"),
        pytest.param(f"hero:\n  image: -1\n  sha256: {A}\n", "2:10", "image number",
                     id="negative"),
        pytest.param(f"hero:\n  image: \u00b2\n  sha256: {A}\n", "2:10", "image number",
                     id="superscript-digit"),
        pytest.param(f"hero:\n  rejected: {{\u0663: {A}}}\n", "2:14", "image number",
                     id="arabic-digit"),
        pytest.param(f"hero:\n  image: {'9' * 5000}\n  sha256: {A}\n", "2:10", "image number",
                     id="thousands-of-digits"),
        pytest.param("hero:\n  image: 1\n  sha256: ABC\n", "3:11", "64 lowercase hex",
                     id="bad-hash"),
        pytest.param("hero:\n  colour: red\n", "2:3", "unknown field 'colour'", id="unknown"),
        pytest.param("hero: {note: a}\nhero: {note: b}\n", "2:1", "listed twice", id="twice"),
        pytest.param("hero: {note: [a]}\n", "1:14", "expected a note", id="note-list"),
        pytest.param("hero:\n  rejected: [1]\n", "2:13", "rejected: expected a mapping",
                     id="rejected-list"),
        pytest.param("hero: {image: 1\n", "2:1", "not valid YAML", id="syntax"),
        pytest.param("- hero\n", "1:1", "mapping of node ids", id="a-list"),
    ],
)
def test_every_problem_has_its_line_and_column(text: str, where: str, what: str) -> None:
    with pytest.raises(PicksError) as caught:
        parse_picks(text, Path("r.picks.yaml"))
    message = str(caught.value)
    assert message.startswith(f"r.picks.yaml:{where}: ")
    assert what in message


def test_concurrent_updates_from_threads_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.picks.yaml"
    nodes = [f"n{i}" for i in range(40)]

    def one(node: str) -> None:
        update_picks(path, lambda p: p.pick(node, 0, A), order=nodes)

    threads = [threading.Thread(target=one, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert list(read_picks(path).entries) == nodes


def _writer(path: str, prefix: str, count: int) -> None:
    for i in range(count):
        update_picks(Path(path), lambda p, i=i: p.annotate(f"{prefix}{i}", "x"))


def test_concurrent_updates_from_two_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.picks.yaml"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), p, 25)) for p in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(read_picks(path).entries) == 50
