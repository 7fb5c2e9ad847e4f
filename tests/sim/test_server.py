"""running_sim, SimThread and `flowpipe sim` on real loopback sockets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from flowpipe.cli import cli
from flowpipe.sim import CapacitySpec, SimConfig, SimThread, running_sim

from .helpers import AUTH, image_bytes

ROOT = Path(__file__).resolve().parents[2]
CONFIG = SimConfig(time_scale=0.001, capacity=CapacitySpec(kind="constant", level=20))


def _post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


async def test_running_sim_serves_on_loopback() -> None:
    async with running_sim(CONFIG) as sim, aiohttp.ClientSession() as session:
        assert sim.base_url.startswith("http://127.0.0.1:")
        assert sim.base_url.endswith("/v1/google-flow")
        async with session.post(
            f"{sim.base_url}/assets/sim@example.com",
            data=image_bytes("PNG"),
            headers={**AUTH, "Content-Type": "image/png"},
        ) as response:
            ref = (await response.json())["mediaGenerationId"]["mediaGenerationId"]
        async with session.post(
            f"{sim.base_url}/images",
            json={"prompt": "x", "contextReference_1": ref, "count": 1},
            headers=AUTH,
        ) as response:
            assert response.status == 200
        stats_url = sim.base_url.replace("/v1/google-flow", "/_sim/stats")
        async with session.get(stats_url) as response:
            served = await response.json()
        assert served["generations"] == sim.stats()["generations"] == 1
        assert sim.reset() == 2
        async with session.post(
            f"{sim.base_url}/images", json={"prompt": "x", "contextReference_1": ref}, headers=AUTH
        ) as response:
            assert response.status == 403


def test_sim_thread_serves_sync_callers() -> None:
    with SimThread(CONFIG) as sim:
        status, body = _post_json(f"{sim.base_url}/images", {"prompt": "a kite", "count": 1})
        assert status == 200
        assert len(body["imagePanels"][0]["generatedImages"]) == 1
        assert sim.stats()["generations"] == 1
        assert sim.reset() == 1
    with pytest.raises(OSError):  # stopped: nothing listens any more
        _post_json(f"{sim.base_url}/images", {"prompt": "a kite"})


def test_sim_thread_has_no_url_before_start() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = SimThread(CONFIG).base_url


def test_cli_prints_base_url_first_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flowpipe",
            "sim",
            "--port",
            "0",
            "--time-scale",
            "0.001",
            "--capacity",
            "20",
            "--token",
            "t1",
            "--accounts",
            "a@example.com,b@example.com",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1/google-flow")
        request = urllib.request.Request(
            f"{base_url}/accounts", headers={"Authorization": "Bearer t1"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert sorted(json.loads(response.read())) == ["a@example.com", "b@example.com"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "t1" not in err


def test_cli_help_documents_every_flag() -> None:
    result = CliRunner().invoke(cli, ["sim", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--host",
        "--port",
        "--token",
        "--accounts",
        "--time-scale",
        "--capacity",
        "--reject-status",
        "--moderation-rate",
        "--moderation-word",
        "--nano-500-rate",
        "--fault-rate",
        "--credits",
        "--broken-account",
        "--seed",
        "Example:",
    ):
        assert flag in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--capacity", "sometimes"], "--capacity sometimes"),
        (["--fault-rate", "2"], "--fault-rate must be between 0 and 1"),
        (["--accounts", "nobody"], "'nobody' is not an email address"),
    ],
    ids=["capacity", "fault-rate", "account"],
)
def test_cli_bad_options_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["sim", *args])
    assert result.exit_code == 2
    assert message in result.output
