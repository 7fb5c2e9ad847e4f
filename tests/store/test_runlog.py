"""run.json through its one owner: written, read back, and read leniently."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from flowpipe.errors import OutputError
from flowpipe.store.runlog import (
    JOURNAL,
    NodeRun,
    RunJournal,
    RunLog,
    read_run_log,
    write_run_log,
)

LOG = RunLog(
    recipe_name="r",
    recipe_path="r.yaml",
    backend_kind="sim",
    base_url="embedded simulator",
    started_at="2026-11-25T10:00:00Z",
    finished_at="2026-11-25T10:00:02Z",
    wall_seconds=2.0,
    outcome="failed",
    exit_code=1,
    message="1 node(s) did not finish",
    summary={"nodes": 2, "done": 1},
    nodes={"a": NodeRun(True, 0.0, 0, None), "b": NodeRun(False, 1.5, 2, "x@y", "AuthError")},
    window=((0.0, "x@y", 3), (1.0, "x@y", 4)),
    inflight=((0.5, "x@y", 1),),
    rejections=((0.7, "x@y", 429),),
)


def test_what_is_written_is_read_back(tmp_path: Path) -> None:
    write_run_log(tmp_path, LOG)
    assert read_run_log(tmp_path) == (LOG, None)


def test_a_failed_node_says_which_error_and_others_do_not(tmp_path: Path) -> None:
    data = json.loads(write_run_log(tmp_path, LOG).read_text())
    assert data["nodes"]["a"] == {"cache_hit": True, "seconds": 0.0, "attempts": 0,
                                  "account": None}
    assert data["nodes"]["b"]["error"] == "AuthError"


def test_a_rejection_without_a_status_is_written_but_not_charted(tmp_path: Path) -> None:
    log = RunLog(**{**{f: getattr(LOG, f) for f in LOG.__dataclass_fields__},
                    "rejections": ((0.7, "x@y", None), (0.9, "x@y", 503))})
    data = json.loads(write_run_log(tmp_path, log).read_text())
    assert data["timeline"]["rejections"] == [[0.7, "x@y", None], [0.9, "x@y", 503]]
    read, _ = read_run_log(tmp_path)
    assert read is not None and read.rejections == ((0.9, "x@y", 503),)


def _streamed(folder: Path, log: RunLog, *, first_nodes: int = 0) -> RunJournal:
    """``log`` through a journal: its first nodes in the log itself, the rest streamed."""
    journal = RunJournal(folder)
    nodes = list(log.nodes.items())
    for nid, run in nodes[first_nodes:]:
        journal.node(nid, run)
    for series in ("window", "inflight", "rejections"):
        for point in getattr(log, series):
            journal.point(series, point)  # type: ignore[arg-type]
    return journal


@pytest.mark.parametrize("first_nodes", [0, 1], ids=["all-streamed", "some-in-the-log"])
def test_a_streamed_log_writes_the_same_run_json(tmp_path: Path, first_nodes: int) -> None:
    whole = write_run_log(tmp_path / "whole", LOG).read_bytes()
    header = dataclasses.replace(LOG, nodes=dict(list(LOG.nodes.items())[:first_nodes]),
                                 window=(), inflight=(), rejections=())
    journal = _streamed(tmp_path / "streamed", LOG, first_nodes=first_nodes)
    assert (tmp_path / "streamed" / JOURNAL).is_file()  # on disk while the run goes
    written = journal.write(header)
    assert written.read_bytes() == whole  # the same file, byte for byte
    assert not (tmp_path / "streamed" / JOURNAL).exists()
    assert read_run_log(tmp_path / "streamed") == (LOG, None)


def test_an_empty_stream_writes_empty_lists(tmp_path: Path) -> None:
    empty = dataclasses.replace(LOG, nodes={}, window=(), inflight=(), rejections=())
    data = json.loads(RunJournal(tmp_path).write(empty).read_text())
    assert data["nodes"] == {} and data["timeline"] == {s: [] for s in
                                                        ("window", "inflight", "rejections")}
    assert data == json.loads(write_run_log(tmp_path / "x", empty).read_text())


def test_a_folder_that_cannot_be_written_keeps_the_records_in_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    journal = RunJournal(blocked / "out")
    journal.node("a", NodeRun(True, 0.0, 0, None))
    journal.point("window", (0.0, "x@y", 3))
    assert journal.nodes() == {"a": NodeRun(True, 0.0, 0, None)}
    assert journal.points("window") == [(0.0, "x@y", 3)]
    with pytest.raises(OutputError):  # the error comes with run.json itself
        journal.write(LOG)


def test_a_line_cut_short_is_not_a_record(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path)
    journal.node("a", NodeRun(True, 0.0, 0, None))
    journal.discard()
    journal = RunJournal(tmp_path)
    journal.node("b", NodeRun(False, 1.0, 1, "x@y"))
    with (tmp_path / JOURNAL).open("a") as fh:
        fh.write('["node", "c", {"cache_hi')  # a full disk stopped the write
    assert list(journal.nodes()) == ["b"]  # not a, which an earlier journal had
