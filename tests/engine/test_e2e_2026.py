"""Issue 12's "Must show", against a real ``flowpipe sim --dialect 2026-07`` on loopback.

The simulator runs as its own process, at a time scale; the run is pointed at it and
uses the same scale, so 30 simulated minutes are seconds here. Its counters
(``GET /_sim/stats``) are the proof: ``paused_hits`` counts every request that reached an
account (or a model on it) while it was paused, ``generated_reuploads`` every upload
of bytes to the account that generated them, ``fife`` the signed URL reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import flowpipe
from flowpipe.cli import cli
from flowpipe.dialects import PER_MODEL_DAILY_QUOTA_REACHED, USER_REQUESTS_THROTTLED
from flowpipe.events import AccountPaused, Event, NodeDone, NodeRetried, NodeStarted

TOKEN = "e2e-2026-secret-token-5b1d"
SCALE = 0.004  # 50 API seconds of latency are 0.2 s; 30 API minutes are 7.2 s
A, B = "a@example.com", "b@example.com"
PRO, LITE = "nano-banana-pro", "nano-banana-2-lite"


@contextlib.contextmanager
def flowpipe_sim(*flags: str) -> Iterator[str]:
    """``flowpipe sim --dialect 2026-07 ...`` as a child process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "flowpipe", "sim", "--dialect", "2026-07", "--token", TOKEN,
         "--accounts", f"{A},{B}", "--time-scale", str(SCALE), "--capacity", "20",
         "--latency-min", "50", "--latency-max", "50", "--seed", "3", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def stats(base_url: str) -> dict[str, Any]:
    origin = base_url.removesuffix("/v1/google-flow")
    with urllib.request.urlopen(f"{origin}/_sim/stats", timeout=30) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def write(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "recipes" / "recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = 'version: 1\nname: e2e-2026\napi: "2026-07"\ndefaults: {aspectRatio: "16:9"}\n'
    body = textwrap.indent(textwrap.dedent(steps), "  ")
    path.write_text(head + "steps:\n" + body, encoding="utf-8")
    return path


async def run(recipe: Path, base_url: str, tmp_path: Path, events: list[Event],
              **extra: Any) -> flowpipe.RunResult:
    options: dict[str, Any] = {
        "backend": "sim", "base_url": base_url, "token": TOKEN, "time_scale": SCALE,
        "cache_dir": tmp_path / "cache", "accounts": (A, B), "fixed_concurrency": 1,
        "seed": 5, "lock": True,
    }
    options.update(extra)
    return await flowpipe.run_async(recipe, out=tmp_path / "out", progress=events.append,
                                    **options)


def of(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


SHOTS = """\
  shot:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
    prompt: "shot number {{ n }}"
    count: 1
  detail:
    prompt: "a detail of the first shots"
    count: 1
    context: ["shot[n=1].0", "shot[n=2].0"]
"""


async def test_a_throttled_account_gets_nothing_for_30_minutes_and_the_run_ends_on_the_other(
    tmp_path: Path,
) -> None:
    recipe = write(tmp_path, SHOTS)
    events: list[Event] = []
    with flowpipe_sim("--throttle", f"{A}:150") as base_url:
        result = await run(recipe, base_url, tmp_path, events)
        counters = stats(base_url)
    assert result.ok, result.message
    [paused] = of(events, AccountPaused)
    assert (paused.account, paused.model, paused.reason) == (A, None, USER_REQUESTS_THROTTLED)
    assert paused.until - paused.t == pytest.approx(1800 * SCALE, abs=0.01)  # 30 sim. min
    # the simulator saw no request reach a while it was out ...
    assert counters["paused_hits"] == {}
    assert [p["account"] for p in counters["pauses"]] == [A]
    assert counters["rate_limited"] == {USER_REQUESTS_THROTTLED: 1}
    # ... the run sent a nothing after the throttle, and finished on b
    assert not [e for e in of(events, NodeStarted) if e.account == A and e.t > paused.t]
    assert of(events, NodeDone)[-1].account == B
    made_on_b = [e.node for e in of(events, NodeDone) if e.account == B and e.t > paused.t]
    assert len(made_on_b) >= 5
    # a generated image referenced on its own account is never uploaded there
    assert counters["generated_reuploads"] == {}
    assert result.summary["rejections"] == 0


async def test_a_per_model_quota_stops_only_that_model_on_that_account(tmp_path: Path) -> None:
    recipe = write(tmp_path, f"""\
      pro:
        matrix: {{n: [1, 2, 3, 4]}}
        prompt: "pro shot {{{{ n }}}}"
        model: {PRO}
        count: 1
      lite:
        matrix: {{n: [1, 2, 3, 4, 5, 6]}}
        prompt: "lite shot {{{{ n }}}}"
        model: {LITE}
        count: 1
    """)
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = (midnight + dt.timedelta(days=1, seconds=-400)).isoformat()  # 400 API s to go
    events: list[Event] = []
    with flowpipe_sim("--model-quota", f"{PRO}:1", "--clock-start", start) as base_url:
        result = await run(recipe, base_url, tmp_path, events)
        counters = stats(base_url)
    assert result.ok, result.message
    pauses = of(events, AccountPaused)
    assert pauses
    assert {(p.model, p.reason) for p in pauses} == {(PRO, PER_MODEL_DAILY_QUOTA_REACHED)}
    for pause in pauses:
        during = [e for e in of(events, NodeStarted)
                  if e.account == pause.account and pause.t < e.t < pause.until]
        assert during and {e.model for e in during} == {LITE}  # the other model went on
    assert counters["paused_hits"] == {}
    assert {p["model"] for p in counters["pauses"]} == {PRO}
    assert all(n.state == "done" for n in result.nodes.values())  # pro again after midnight


async def test_an_expired_fife_url_remakes_its_node_and_no_image_goes_back_to_its_maker(
    tmp_path: Path,
) -> None:
    recipe = write(tmp_path, """\
      base:
        prompt: "the base"
        count: 2
      uses:
        matrix: {n: [1, 2, 3, 4, 5, 6]}
        prompt: "use {{ n }}"
        count: 1
        context: [base.0, base.1]
    """)
    events: list[Event] = []
    flags = ("--fife-expired-rate", "0.3", "--encoded-image-rate", "0")
    with flowpipe_sim(*flags) as base_url:
        result = await run(recipe, base_url, tmp_path, events, fixed_concurrency=None)
        counters = stats(base_url)
    assert result.ok, result.message
    assert counters["fife"]["expired"] > 0
    remade = {e.node for e in of(events, NodeRetried) if e.error.type == "ImageURLError"}
    assert remade and all(result.nodes[n].state == "done" for n in remade)
    assert counters["generated_reuploads"] == {}
    maker = result.run_info["nodes"]["base"]["account"]
    assert maker not in counters["uploads_by_account"]  # referenced there by its id


def test_the_cli_stops_with_exit_3_when_the_only_account_is_paused_beyond_max_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write(tmp_path, SHOTS)
    with flowpipe_sim("--throttle", f"{A}:0") as base_url:
        monkeypatch.setenv("FLOWPIPE_API_URL", base_url)
        monkeypatch.setenv("USEAPI_TOKEN", TOKEN)
        result = CliRunner().invoke(cli, [
            "run", str(recipe), "-o", str(tmp_path / "out"), "--plain", "--no-report",
            "--account", A, "--time-scale", str(SCALE), "--cache-dir", str(tmp_path / "c"),
            "--max-wait", "60", "--captcha-retry", "5", "--max-concurrency", "1",
        ])
        counters = stats(base_url)
    assert result.exit_code == 3, result.output
    assert f"paused {A}: out until" in result.stderr
    assert "max_wait (60 API seconds)" in result.stderr and f"{A} back at" in result.stderr
    assert counters["paused_hits"] == {}
    assert TOKEN not in result.output
