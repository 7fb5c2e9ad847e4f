"""run.json through its one owner: written, read back, and read leniently."""

from __future__ import annotations

import json
from pathlib import Path

from flowpipe.store.runlog import NodeRun, RunLog, read_run_log, write_run_log

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
