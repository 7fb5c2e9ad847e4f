"""Reading manifest.json and run.json leniently where possible, strictly where needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowpipe.errors import OutputError
from flowpipe.report.model import load_manifest, load_run


def _write(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))


def test_manifest_values_are_read_with_their_types(tmp_path: Path) -> None:
    _write(
        tmp_path / "manifest.json",
        {
            "recipe": {"name": "r", "path": "r.yaml"},
            "backend": "sim",
            "steps": [{"id": "a", "matrix": {"n": [1, True]}, "nodes": ["a[n=1]"]}],
            "nodes": [
                {
                    "id": "a[n=1]",
                    "step": "a",
                    "variant": {"n": 1},
                    "status": "done",
                    "request": {"count": 2, "seed": None},
                    "generation_seconds": 3,
                    "images": [{"path": "a/n=1/0.jpg", "sha256": "ab", "seed": 5}],
                }
            ],
        },
    )
    manifest = load_manifest(tmp_path)
    node = manifest.nodes[0]
    assert manifest.steps[0].matrix == (("n", ("1", "true")),)
    assert node.variant == (("n", "1"),)
    assert node.request == (("count", "2"), ("seed", "null"))
    assert node.generation_seconds == 3.0
    assert node.images[0].index == 0 and node.images[0].width is None


def test_steps_missing_from_the_list_come_from_the_nodes(tmp_path: Path) -> None:
    _write(tmp_path / "manifest.json", {"nodes": [{"id": "x[k=v]"}, {"id": "y", "step": "y"}]})
    steps = load_manifest(tmp_path).steps
    assert [(s.id, s.node_ids) for s in steps] == [("x", ("x[k=v]",)), ("y", ("y",))]


def test_run_timeline_keeps_only_well_formed_entries_sorted(tmp_path: Path) -> None:
    _write(
        tmp_path / "run.json",
        {
            "summary": {"nodes": 3, "done": True, "api_calls": 2.0},
            "nodes": {"a": {"cache_hit": True, "seconds": 1}, "b": "junk"},
            "timeline": {"window": [[2.0, "a@x", 4], [0, "a@x", 3], ["bad"], [1, "a@x", "x"]]},
        },
    )
    run, note = load_run(tmp_path)
    assert note is None and run is not None
    assert run.window == ((0.0, "a@x", 3), (2.0, "a@x", 4))
    assert run.summary == {"nodes": 3, "api_calls": 2}
    assert set(run.nodes) == {"a"} and run.nodes["a"].cache_hit is True


@pytest.mark.parametrize(
    ("content", "note"),
    [(None, "run.json is missing"), ("[]", "not a JSON object"), ("{", "not valid JSON")],
    ids=["missing", "list", "garbled"],
)
def test_unusable_run_json_gives_a_note(tmp_path: Path, content: str | None, note: str) -> None:
    if content is not None:
        (tmp_path / "run.json").write_text(content)
    run, message = load_run(tmp_path)
    assert run is None and message is not None and note in message


def test_manifest_that_is_not_utf8_is_output_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(OutputError, match="cannot be read"):
        load_manifest(tmp_path)
