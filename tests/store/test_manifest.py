"""manifest.json through its one owner: what is written is read back, byte-stable."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from flowpipe.errors import ErrorInfo, OutputError
from flowpipe.store.manifest import (
    JOURNAL,
    MANIFEST,
    Manifest,
    ManifestImage,
    ManifestJournal,
    ManifestNode,
    ManifestRef,
    read_manifest,
    steps_of,
    write_manifest,
    write_manifest_stream,
)


def _node(node_id: str, step: str, variant: tuple[tuple[str, str], ...], **extra: object):
    base: dict[str, object] = {
        "id": node_id, "step": step, "variant": variant, "status": "done", "key": "k" + node_id,
        "deps": (), "prompt": f"prompt of {node_id}", "request": {"count": 1, "seed": None},
        "references": (), "model_used": "imagen-4", "attempts": 1, "generation_seconds": 12.5,
        "images": (ManifestImage(0, f"{step}/x/0.jpg", "ab" * 32, 8, 8, 5, "user:1-image:1"),),
        "error": None,
    }
    base.update(extra)
    return ManifestNode(**base)  # type: ignore[arg-type]


NODES = (
    _node("hero", "hero", ()),
    _node("tile[n=1]", "tile", (("n", "1"),), deps=("hero",),
          references=(ManifestRef("context", "hero.0", "cd" * 32),)),
    _node("tile[n=2]", "tile", (("n", "2"),), status="failed", images=(), model_used=None,
          error=ErrorInfo("ModerationError", "moderated", 500, "UNSAFE", "reword it"),
          references=(ManifestRef("context", "hero.0", None),)),
)


def test_what_is_written_is_read_back(tmp_path: Path) -> None:
    manifest = Manifest(recipe_name="r", recipe_path="r.yaml", backend="sim",
                        steps=steps_of(NODES), nodes=NODES)
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest


def test_steps_keep_first_appearance_order_and_each_value_once() -> None:
    steps = steps_of(NODES)
    assert [(s.id, s.matrix, s.node_ids) for s in steps] == [
        ("hero", (), ("hero",)),
        ("tile", (("n", ("1", "2")),), ("tile[n=1]", "tile[n=2]")),
    ]


def test_the_same_manifest_gives_the_same_bytes(tmp_path: Path) -> None:
    manifest = Manifest(recipe_name="r", recipe_path="r.yaml", backend="sim",
                        steps=steps_of(NODES), nodes=NODES)
    first = write_manifest(tmp_path / "a", manifest).read_bytes()
    second = write_manifest(tmp_path / "b", read_manifest(tmp_path / "a")).read_bytes()
    assert first == second
    data = json.loads(first)
    assert list(data) == ["format", "recipe", "backend", "steps", "nodes"]
    assert list(data["nodes"][0]) == [
        "id", "step", "variant", "status", "key", "deps", "prompt", "request", "references",
        "model_used", "attempts", "generation_seconds", "images", "error",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": []}, "no 'nodes' list"),
        ({"nodes": [{"step": "x"}]}, r"nodes\[0\]\.id"),
        ({"nodes": [{"id": "a", "images": [{"sha256": "x"}]}]}, r"images\[0\]\.path"),
        ({"nodes": [{"id": "a", "request": [1]}]}, r"nodes\[0\]\.request: expected an object"),
    ],
    ids=["no-nodes", "no-id", "image-without-path", "request-not-object"],
)
def test_what_cannot_be_used_is_an_output_error(tmp_path: Path, data: object,
                                               message: str) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(OutputError, match=message):
        read_manifest(tmp_path)


def _manifest() -> Manifest:
    return Manifest(recipe_name="r", recipe_path="r.yaml", backend="sim",
                    steps=steps_of(NODES), nodes=NODES)


def test_a_streamed_manifest_is_the_same_file(tmp_path: Path) -> None:
    whole = write_manifest(tmp_path / "whole", _manifest()).read_bytes()
    header = dataclasses.replace(_manifest(), nodes=())
    streamed = write_manifest_stream(tmp_path / "streamed", header, iter(NODES))
    assert streamed.read_bytes() == whole
    before = streamed.stat().st_mtime_ns
    os.utime(streamed, ns=(before - 10**9, before - 10**9))
    write_manifest_stream(tmp_path / "streamed", header, iter(NODES))  # the same bytes again
    assert streamed.stat().st_mtime_ns == before - 10**9  # left as it was
    assert not [p for p in (tmp_path / "streamed").iterdir() if p.name != MANIFEST]


def test_the_journal_gives_back_each_entry_by_position(tmp_path: Path) -> None:
    journal = ManifestJournal(tmp_path, size=5)
    journal.put(3, NODES[2])
    journal.put(0, NODES[0])
    assert (tmp_path / JOURNAL).is_file()  # on disk as the nodes end
    assert [journal.get(i) for i in range(5)] == [NODES[0], None, None, NODES[2], None]
    journal.put(1, NODES[1])
    assert list(journal) == [NODES[0], NODES[1], NODES[2]]
    journal.discard()
    assert not (tmp_path / JOURNAL).exists() and journal.get(0) is None


def test_a_journal_that_cannot_be_written_holds_the_entries(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    journal = ManifestJournal(blocked / "out", size=2)
    journal.put(1, NODES[1])
    assert journal.get(1) == NODES[1] and journal.get(0) is None
