"""Ids a 403 refused are not tried again under another name: the bytes go up once more.

The service may forget ids (the simulator restarted, a session was reset). A node whose
reference has a generated id and an upload record from an earlier run, both forgotten,
must not spend its one re-upload on the second stale id: after the 403 the bytes are
uploaded afresh.
"""

from __future__ import annotations

from pathlib import Path

from flowpipe.engine.clock import VirtualClock

from .conftest import virtual_run
from .fakeapi import FakeAPI

RECIPE = """
version: 1
name: stale
defaults: {model: imagen-4, count: 1}
vars: {light: soft}
steps:
  hero:
    prompt: "a red boat"
  closeup:
    prompt: "the boat in {{ light }} light"
    model: nano-banana
    context: [hero.0]
"""


def test_after_a_403_no_older_id_of_the_same_bytes_is_tried(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(RECIPE)
    first = FakeAPI(VirtualClock(), refuse_once={"sim@example.com"})
    assert virtual_run(recipe, first, tmp_path).ok  # closeup's 403 left an upload record
    assert sum(first.uploads.values()) == 1
    forgetful = FakeAPI(VirtualClock())  # a new service: every id of the first is unknown
    result = virtual_run(recipe, forgetful, tmp_path, variables={"light": "hard"})
    assert result.ok, result.nodes["closeup"].reason
    assert forgetful.statuses["images 403"] == 1  # the generated id; never the old upload
    assert sum(forgetful.uploads.values()) == 1
