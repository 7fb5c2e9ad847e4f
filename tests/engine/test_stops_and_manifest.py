"""After any stop the output folder and its manifest agree (issue 15, item 9).

The manifest never lists bytes that are not on disk; after a run that ended by itself
(stopped by the API, interrupted, failed) it lists exactly the images on disk; temp
files a killed write left are gone after the next start.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from flowpipe.api import HTTPResponse
from flowpipe.engine.clock import VirtualClock
from flowpipe.sim import CapacitySpec, SimConfig, SimThread
from flowpipe.sim.bodies import error
from flowpipe.store.provenance import api_sha256

from .conftest import TOKEN, virtual_run
from .fakeapi import FakeAPI

CHAIN = """
version: 1
name: chain
defaults: {model: imagen-4, aspectRatio: square, count: 2}
steps:
  hero:
    prompt: "a {{ colour }} trail shoe on a ridge"
    seed: 1234
  tile:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
    prompt: "tile {{ n }} of the {{ colour }} shoe"
    context: [hero.0]
"""


def _recipe(write_recipe, colour: str) -> Path:
    return write_recipe(CHAIN.replace("{{ colour }}", colour))


def _listed(out: Path) -> dict[str, str]:
    """Image path -> SHA-256 of the file, as OUT/manifest.json lists them.

    The files carry a provenance packet, so the file's hash is ``file_sha256``;
    ``sha256`` is the image as the API made it (checked apart below).
    """
    manifest = json.loads((out / "manifest.json").read_text())
    for node in manifest["nodes"]:
        for img in node["images"]:
            if (out / img["path"]).is_file():  # a missing file is caught by the caller
                assert api_sha256((out / img["path"]).read_bytes()) == img["sha256"]
    return {img["path"]: img["file_sha256"] for n in manifest["nodes"] for img in n["images"]}


def _on_disk(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in out.rglob("*.jpg")
        if ".thumbs" not in p.parts
    }


def _no_false_claim(out: Path) -> None:
    disk = _on_disk(out)
    wrong = {p: s for p, s in _listed(out).items() if disk.get(p) != s}
    assert not wrong, f"the manifest lists bytes that are not on disk: {sorted(wrong)}"


def test_a_stopped_refresh_keeps_the_cached_result_of_what_it_did_not_redo(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, "teal")
    first = virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path)
    assert first.ok
    again = virtual_run(recipe, FakeAPI(VirtualClock(), credits=1), tmp_path, refresh_all=True)
    assert again.outcome == "stopped"  # 402 after the first refreshed node
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {n["status"] for n in manifest["nodes"]} == {"done"}
    assert all(node.state == "done" for node in again.nodes.values())
    assert _listed(tmp_path / "out") == _on_disk(tmp_path / "out")


class _Refusing(FakeAPI):
    """FakeAPI that refuses (400, a plain error: the node fails) prompts with ``word``."""

    word: str = "ridge"

    async def _images(self, body: dict[str, object]) -> HTTPResponse:
        if self.word in str(body["prompt"]):
            self.requests.append(("/images", str(body.get("email"))))
            return self._answer("/images", 400, error("refused for the test"))
        return await super()._images(body)


def test_a_failed_refresh_keeps_the_files_of_what_it_skipped_below(
    write_recipe, tmp_path: Path
) -> None:
    """hero is refreshed and fails: the tiles below it were skipped, with no new key, and
    their files (made from the hero image that is still there) stay listed."""
    recipe = _recipe(write_recipe, "teal")
    assert virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path).ok
    before = _on_disk(tmp_path / "out")
    again = virtual_run(recipe, _Refusing(VirtualClock()), tmp_path, refresh_steps={"hero"})
    assert again.nodes["hero"].state == "failed"
    assert {again.nodes[n].state for n in again.nodes if n != "hero"} == {"skipped"}
    assert again.removed == 0
    assert _on_disk(tmp_path / "out") == before
    assert _listed(tmp_path / "out") == before


def test_a_run_stopped_after_an_edit_lists_exactly_the_files_on_disk(
    write_recipe, tmp_path: Path
) -> None:
    """The edit changes every node; the API stops the run after two: what the old
    manifest listed is gone or listed again, nothing is listed that is not there."""
    virtual_run(_recipe(write_recipe, "teal"), FakeAPI(VirtualClock()), tmp_path)
    before = _on_disk(tmp_path / "out")
    edited = virtual_run(_recipe(write_recipe, "amber"), FakeAPI(VirtualClock(), credits=2),
                         tmp_path)
    assert edited.outcome == "stopped"
    out = tmp_path / "out"
    assert _listed(out) == _on_disk(out)
    made = {p.relative_to(out).as_posix() for p in edited.images}
    assert made and set(_on_disk(out)) == made  # old images of changed nodes: in the cache, so gone
    assert set(before) > made


def test_temp_files_a_killed_write_left_are_removed_at_the_next_start(
    write_recipe, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    leftover = out / "hero" / "default" / ".0.jpg.k1ll3d_x.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"\xff\xd8 half a jpeg")
    mine = out / "notes.tmp"  # not a name the writer makes: left alone
    mine.write_text("keep")
    result = virtual_run(_recipe(write_recipe, "teal"), FakeAPI(VirtualClock()), tmp_path)
    assert result.ok
    assert not leftover.exists()
    assert mine.exists()


def _flowpipe(recipe: Path, out: Path, cache: Path, base_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "USEAPI_TOKEN": TOKEN, "FLOWPIPE_API_URL": base_url,
           "FLOWPIPE_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "flowpipe", "run", str(recipe), "-o", str(out), "--plain",
         "--no-report", "--max-concurrency", "3", "--time-scale", "0.01"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_kill_9_during_a_run_of_an_edited_recipe_leaves_no_false_manifest(
    write_recipe, tmp_path: Path
) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    config = SimConfig(tokens=(TOKEN,), time_scale=0.01, seed=1,
                       capacity=CapacitySpec(kind="constant", level=20))
    with SimThread(config) as sim:
        first = _flowpipe(_recipe(write_recipe, "teal"), out, cache, sim.base_url)
        assert first.wait(timeout=120) == 0
        old = _listed(out)
        edited = _flowpipe(_recipe(write_recipe, "amber"), out, cache, sim.base_url)
        assert edited.stdout is not None
        for line in edited.stdout:  # the hero and a tile were overwritten with new bytes
            if line.count("] done ") and "tile[" in line:
                edited.send_signal(signal.SIGKILL)
                break
        edited.wait(timeout=30)
        assert edited.returncode == -signal.SIGKILL
        assert _on_disk(out)["hero/default/0.jpg"] != old["hero/default/0.jpg"]
        _no_false_claim(out)

        again = _flowpipe(_recipe(write_recipe, "amber"), out, cache, sim.base_url)
        assert again.wait(timeout=120) == 0
    assert _listed(out) == _on_disk(out)
