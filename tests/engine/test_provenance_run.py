"""Every image a run writes carries its provenance, and equal runs write equal files."""

from __future__ import annotations

import json
from pathlib import Path

from flowpipe.engine.clock import VirtualClock
from flowpipe.store.provenance import api_sha256, read_provenance
from flowpipe.store.responses import sha256_hex

from .conftest import all_files, virtual_run
from .fakeapi import FakeAPI

RECIPE = """
version: 1
name: prov
steps:
  hero:
    prompt: "a red shoe"
    count: 2
    seed: 7
  poster:
    prompt: "poster"
    context: [hero.1]
    count: 1
"""


def test_run_output_carries_provenance_and_two_folders_get_the_same_bytes(
    write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(RECIPE)
    cache = tmp_path / "cache"
    first = virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path / "1", cache_dir=cache)
    second = virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path / "2", cache_dir=cache)
    assert first.ok and second.ok
    assert second.summary["cached"] == 2  # the second folder came from the cache
    a, b = tmp_path / "1" / "out", tmp_path / "2" / "out"
    images = {k: v for k, v in all_files(a).items() if k.endswith(".jpg")}
    assert len(images) == 3
    assert images == {k: v for k, v in all_files(b).items() if k.endswith(".jpg")}
    manifest = json.loads((a / "manifest.json").read_text())
    for node in manifest["nodes"]:
        for img in node["images"]:
            data = (a / img["path"]).read_bytes()
            found = read_provenance(data)
            assert found is not None
            assert (found.node, found.image, found.request_key) == (node["id"], img["index"],
                                                                    node["key"])
            assert found.seed == img["seed"] and found.model == node["model_used"]
            assert found.recipe == "prov" and found.image_sha256 == img["sha256"]
            assert api_sha256(data) == img["sha256"]
            assert sha256_hex(data) == img["file_sha256"]


def test_an_output_used_as_an_asset_goes_up_as_the_api_made_it(
    write_recipe, tmp_path: Path
) -> None:
    """Its hash and its upload are the API's bytes: the packet (which names the flowpipe
    version) is not part of what the key stands for (review A-15)."""
    first = virtual_run(write_recipe(RECIPE), FakeAPI(VirtualClock()), tmp_path / "1")
    assert first.ok
    made = (tmp_path / "1" / "out" / "hero" / "default" / "0.jpg").read_bytes()
    assert read_provenance(made) is not None
    folder = tmp_path / "recipes"
    (folder / "made.jpg").write_bytes(made)
    recipe = write_recipe("version: 1\nname: reuse\nassets: {made: made.jpg}\nsteps:\n"
                          "  again:\n    prompt: again\n    count: 1\n"
                          "    context: [assets.made]\n", "reuse.yaml")
    api = FakeAPI(VirtualClock())
    result = virtual_run(recipe, api, tmp_path / "2")
    assert result.ok, result.message
    assert [sha for _, sha in api.uploads] == [api_sha256(made)]
