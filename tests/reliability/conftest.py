"""Shared pieces for the reliability suite: a secret token, fast runs, file checks."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from flowpipe.engine import RunOptions
from flowpipe.sim import CapacitySpec, SimConfig

TOKEN = "reliability-secret-token-91c4e2"  # distinctive: scanned for in every output
SCALE = 0.004  # 10-20 API seconds of latency become 40-80 ms

CHAIN = """
version: 1
name: chain
defaults: {model: imagen-4, aspectRatio: landscape, count: 2}
steps:
  hero:
    prompt: "trail shoe on a ridge at golden hour"
    seed: 1234
  closeup:
    matrix: {angle: [front, side]}
    prompt: "studio close-up of the trail shoe, {{ angle }} view"
    context: [hero.0]
  poster:
    style: hero.1
    context: ["closeup[angle=side].1"]
    prompt: "poster featuring the trail shoe"
    aspectRatio: portrait
"""
CHAIN_NODES = 4  # hero, closeup x2, poster


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "recipe.yaml") -> Path:
        path = tmp_path / "recipes" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


def sim_config(**extra: object) -> SimConfig:
    base: dict[str, object] = {
        "tokens": (TOKEN,),
        "time_scale": SCALE,
        "capacity": CapacitySpec(kind="constant", level=20),
        "seed": 7,
    }
    base.update(extra)
    return SimConfig(**base)  # type: ignore[arg-type]


def run_options(base_url: str, tmp_path: Path, **extra: object) -> RunOptions:
    base: dict[str, object] = {
        "out": tmp_path / "out",
        "backend": "sim",
        "base_url": base_url,
        "token": TOKEN,
        "time_scale": SCALE,
        "cache_dir": tmp_path / "cache",
        "report": False,
        "lock": True,
        "seed": 5,
    }
    base.update(extra)
    return RunOptions(**base)  # type: ignore[arg-type]


def flowpipe_proc(
    recipe: Path, out: Path, cache: Path, base_url: str, *extra: str, scale: float = SCALE
) -> subprocess.Popen[str]:
    """``flowpipe run`` in a child process, pointed at a simulator by environment."""
    env = {
        **os.environ,
        "USEAPI_TOKEN": TOKEN,
        "FLOWPIPE_API_URL": base_url,
        "FLOWPIPE_CACHE_DIR": str(cache),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flowpipe", "run", str(recipe), "-o", str(out), "--plain",
         "--no-report", "--time-scale", str(scale), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def assert_outputs_whole(out: Path) -> int:
    """Every JPEG under ``out`` decodes fully and no temp file is left; returns the count."""
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    images = sorted(out.rglob("*.jpg"))
    for path in images:
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            im.load()  # raises on a truncated or partial JPEG
            assert im.format == "JPEG"
    return len(images)


def done_nodes(text: str) -> set[str]:
    """Node ids that a ``--plain`` log reports as made by a request."""
    return {
        line.split("] done ", 1)[1].split(" in ")[0]
        for line in text.splitlines()
        if "] done " in line
    }
