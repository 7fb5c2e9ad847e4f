"""Machines sharing one bucket: each key paid once, a frozen run from the remote alone,
and a remote that dies mid-run costing one warning and nothing else."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowpipe.engine import run_recipe_async
from flowpipe.events import Event, NodeDone
from flowpipe.sim import SimThread
from flowpipe.store import DiskCache, ResponseCache
from flowpipe.store.remote import DONE
from flowpipe.store.responses import verify_cache

from .conftest import assert_outputs_whole, flowpipe_proc, run_options, sim_config

OVERLAP = 0.01  # 10-20 API s become 0.1-0.2 s: the two runs overlap for seconds
SLOWER = 0.02  # 0.2-0.4 s per generation: the S3 server is stopped while some are in flight

SHARED = """
version: 1
name: shared
defaults: {model: imagen-4, count: 1}
steps:
  tile:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}
    prompt: "pattern tile number {{ n }}"
    seed: 42
  mosaic:
    context: ["tile[n=3].0", "tile[n=7].0"]
    prompt: "a mosaic of two tiles"
    seed: 42
"""
SHARED_KEYS = 13


def dead_api_url() -> str:
    """A loopback port nobody listens on: any request sent there fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/google-flow"


def images(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.jpg"))}


def test_two_machines_pay_each_key_once_and_a_third_runs_frozen_from_the_remote_alone(
    write_recipe: Callable[..., Path], tmp_path: Path, remote_url: str, s3_secret: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = write_recipe(SHARED, "shared.yaml")
    monkeypatch.setenv("FLOWPIPE_REMOTE", remote_url)
    with SimThread(sim_config(time_scale=OVERLAP)) as sim:
        procs = [
            flowpipe_proc(recipe, tmp_path / f"out{i}", tmp_path / f"cache{i}", sim.base_url,
                          "--json", scale=OVERLAP)
            for i in (0, 1)
        ]
        logs = [proc.communicate(timeout=180)[0] for proc in procs]
        served = sim.stats()["generations"]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, log
    # each key generated once between the two machines (separate caches, one bucket)
    assert served == SHARED_KEYS, logs
    runs = [json.loads((tmp_path / f"out{i}" / "run.json").read_text()) for i in (0, 1)]
    made = [r["summary"]["api_calls"] for r in runs]
    taken = [r["remote"]["pulled"] for r in runs]
    assert sum(made) == SHARED_KEYS and all(m + t == SHARED_KEYS for m, t in zip(made, taken,
                                                                                  strict=True))

    third = flowpipe_proc(recipe, tmp_path / "out2", tmp_path / "cache2", dead_api_url(),
                          "--frozen", scale=OVERLAP)
    log = third.communicate(timeout=120)[0]
    assert third.returncode == 0, log
    assert assert_outputs_whole(tmp_path / "out2") == SHARED_KEYS
    reference = images(tmp_path / "out0")
    assert images(tmp_path / "out1") == reference
    assert images(tmp_path / "out2") == reference  # byte-identical, from the remote alone
    info = json.loads((tmp_path / "out2" / "run.json").read_text())
    assert info["summary"]["api_calls"] == 0 and info["remote"]["pulled"] == SHARED_KEYS
    for text in [*logs, log]:
        assert s3_secret not in text
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".txt", ".yaml"):
            assert s3_secret not in path.read_text(errors="replace"), path


CHAIN8 = """
version: 1
name: eight
defaults: {model: imagen-4, count: 1}
steps:
  shot:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
    prompt: "shot {{ n }}"
"""


class StopRemoteAfter:
    """An event sink that stops the S3 server once ``count`` generations are pushed."""

    def __init__(self, server: Any, client: Any, bucket: str, count: int) -> None:
        self.server, self.client, self.bucket, self.count = server, client, bucket, count
        self.done = 0

    def pushed(self) -> int:
        """Claims marked done: the last step of a push."""
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix="team/v1/claims/")
        bodies = [self.client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
                  for o in listed.get("Contents", [])]
        return bodies.count(DONE)

    def handle(self, event: Event) -> None:
        if isinstance(event, NodeDone):
            self.done += 1
            if self.done == self.count:  # pushes run in the background: wait for them
                deadline = time.monotonic() + 10
                while self.pushed() < self.count and time.monotonic() < deadline:
                    time.sleep(0.01)
                self.server.stop()


async def test_a_remote_that_stops_mid_run_is_one_warning_and_the_next_run_pushes_the_rest(
    write_recipe: Callable[..., Path], tmp_path: Path, s3_endpoint: str, own_s3: Any,
    bucket_on: Any, s3_client_on: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, endpoint = own_s3()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    bucket = bucket_on(endpoint)
    url = f"s3://{bucket}/team"
    recipe = write_recipe(CHAIN8, "eight.yaml")
    stopper = StopRemoteAfter(server, s3_client_on(endpoint), bucket, 2)
    with SimThread(sim_config(time_scale=SLOWER)) as sim:
        options = run_options(sim.base_url, tmp_path, remote=url, time_scale=SLOWER)
        with caplog.at_level(logging.WARNING):
            result = await run_recipe_async(recipe, options, sinks=[stopper])
        assert result.exit_code == 0, result.message
        assert assert_outputs_whole(tmp_path / "out") == 8
        lost = [r.getMessage() for r in caplog.records if "stopped answering" in r.getMessage()]
        assert len(lost) == 1 and url in lost[0], [r.getMessage() for r in caplog.records]
        shared = result.run_info["remote"]
        assert result.remote == shared  # the CLI's line reads it without parsing run.json
        pending = sorted(p.name for p in (tmp_path / "cache" / "remote-pending").iterdir())
        assert not shared["available"]
        assert shared["pushed"] >= 2 and len(pending) >= 1
        assert shared["pushed"] + len(pending) == 8

        # a remote answers again on the same port: a new, empty server, so what is on it
        # afterwards is exactly what the next run pushed
        own_s3(int(endpoint.rsplit(":", 1)[1]))
        bucket_on(endpoint, bucket)
        again = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path, remote=url,
                                                           out=tmp_path / "out2",
                                                           time_scale=SLOWER))
        assert again.exit_code == 0 and again.summary["api_calls"] == 0
        assert again.run_info["remote"]["pushed"] == len(pending)
    assert list((tmp_path / "cache" / "remote-pending").iterdir()) == []
    listed = s3_client_on(endpoint).list_objects_v2(Bucket=bucket, Prefix="team/v1/gen/")
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]) == pending
    store = DiskCache(tmp_path / "cache")
    try:
        report = verify_cache(ResponseCache(store))
    finally:
        store.close()
    assert report.corrupt == () and report.generations == 8
