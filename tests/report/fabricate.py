"""Fabricate realistic output folders (manifest.json, run.json, real JPEGs) for the report.

Plain Python with no test-framework import, so `benchmarks/report_open.py` loads it too. The
files are written by their owners (flowpipe.store.manifest, flowpipe.store.runlog), so the
folder follows docs/outputs.md as a run writes it: a plain step, a matrix step with two variables, a
portrait step whose prompt and error texts are hostile HTML, a failed node, a skipped
node, cached nodes and an optional bulk step for size tests.
"""

from __future__ import annotations

import colorsys
import hashlib
import random
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from flowpipe.errors import ErrorInfo
from flowpipe.store.manifest import (
    Manifest,
    ManifestImage,
    ManifestNode,
    ManifestRef,
    steps_of,
    write_manifest,
)
from flowpipe.store.runlog import NodeRun, RunLog, write_run_log

XSS_SCRIPT = "<script>window.__xss = 1; alert(1)</script>"
XSS_ATTR = '"><img src=x onerror="window.__xss=1;alert(1)">'
HOSTILE_PROMPT = f"poster featuring the shoe {XSS_SCRIPT} and {XSS_ATTR} & more"
HOSTILE_ERROR = "model said </script><script>window.__xss=1</script>\u2028done"
HOSTILE_PALETTE = "amber & <b>rust</b>"
ACCOUNT = "a@example.com"
ACCOUNT_B = "b@example.com"

SIZES = {
    ("imagen-4", "landscape"): (1408, 768),
    ("imagen-4", "portrait"): (768, 1408),
    ("nano-banana", "landscape"): (1344, 768),
    ("imagen-4", "square"): (1024, 1024),
}


@dataclass
class Fabricated:
    """What was written, for assertions."""

    out: Path
    manifest: dict[str, Any]
    run: dict[str, Any]
    image_paths: list[str] = field(default_factory=list)

    def images_bytes(self) -> int:
        return sum((self.out / p).stat().st_size for p in self.image_paths)


def _jpeg(seed: str, size: tuple[int, int]) -> bytes:
    """A real, smooth, distinct JPEG: soft colour field plus a few shapes."""
    rng = random.Random(seed)
    base = Image.new("RGB", (4, 3))
    hue = rng.random()
    for x in range(4):
        for y in range(3):
            h = (hue + rng.uniform(-0.12, 0.12)) % 1.0
            base.putpixel((x, y), _hsv(h, rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.9)))
    img = base.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img, "RGBA")
    w, h = size
    for _ in range(3):
        r = rng.randint(min(w, h) // 10, min(w, h) // 3)
        cx, cy = rng.randint(0, w), rng.randint(0, h)
        colour = (*_hsv((hue + 0.5) % 1.0, 0.5, 0.95), 90)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    draw.rectangle((0, h * 2 // 3, w, h), fill=(0, 0, 0, 60))
    buf = BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _node(
    fab: Fabricated,
    *,
    node_id: str,
    step: str,
    variant: dict[str, str],
    prompt: str,
    model: str,
    aspect: str,
    count: int,
    seed: int,
    deps: list[str],
    references: list[ManifestRef],
    status: str = "done",
    error: ErrorInfo | None = None,
    model_used: str | None = None,
) -> ManifestNode:
    folder = ",".join(f"{k}={v}" for k, v in variant.items()) or "default"
    width, height = SIZES[(model_used or model, aspect)]
    images = []
    if status == "done":
        for i in range(count):
            rel = f"{step}/{folder}/{i}.jpg"
            data = _jpeg(f"{node_id}#{i}", (width, height))
            (fab.out / rel).parent.mkdir(parents=True, exist_ok=True)
            (fab.out / rel).write_bytes(data)
            fab.image_paths.append(rel)
            images.append(
                ManifestImage(
                    index=i,
                    path=rel,
                    sha256=hashlib.sha256(data).hexdigest(),
                    width=width,
                    height=height,
                    seed=seed + i,
                    media_generation_id=f"user:4711-email:{ACCOUNT}-image:{node_id}-{i}",
                )
            )
    request: dict[str, Any] = {"model": model, "aspectRatio": aspect, "count": count, "seed": seed}
    for n, ref in enumerate(references, start=1):
        key = "styleReference_1" if ref.role == "style" else f"contextReference_{n}"
        request[key] = f"sha256:{ref.sha256}"
    return ManifestNode(
        id=node_id,
        step=step,
        variant=tuple(variant.items()),
        status=status,
        key=hashlib.sha256(node_id.encode()).hexdigest(),
        deps=tuple(deps),
        prompt=prompt,
        request=request,
        references=tuple(references),
        model_used=(model_used or model) if status == "done" else None,
        attempts=1 if status == "done" else (3 if status == "failed" else 0),
        generation_seconds=round(10 + random.Random(node_id).random() * 8, 1),
        images=tuple(images),
        error=error,
    )


def fabricate_output(out: Path, *, bulk_variants: int = 0, with_run: bool = True) -> Fabricated:
    """Write a realistic OUT folder; ``bulk_variants`` adds a 4-image matrix step per value."""
    out.mkdir(parents=True, exist_ok=True)
    fab = Fabricated(out=out, manifest={}, run={})
    nodes: list[ManifestNode] = []
    hero = _node(
        fab,
        node_id="hero",
        step="hero",
        variant={},
        prompt="trail running shoe on a ridge at golden hour, teal and amber palette",
        model="imagen-4",
        aspect="landscape",
        count=4,
        seed=1234,
        deps=[],
        references=[],
    )
    nodes.append(hero)
    hero0 = ManifestRef("context", "hero.0", hero.images[0].sha256)
    closeups = []
    for angle in ("front", "side"):
        for palette in ("teal", HOSTILE_PALETTE):
            node_id = f"closeup[angle={angle},palette={palette}]"
            closeups.append(node_id)
            nodes.append(
                _node(
                    fab,
                    node_id=node_id,
                    step="closeup",
                    variant={"angle": angle, "palette": palette},
                    prompt=f"studio close-up of the trail running shoe, {angle} view, {palette}",
                    model="imagen-4",
                    aspect="landscape",
                    count=2,
                    seed=88412 + len(closeups),
                    deps=["hero"],
                    references=[hero0],
                    model_used="nano-banana" if angle == "side" and palette == "teal" else None,
                )
            )
    style = ManifestRef("style", "hero.2", hero.images[2].sha256)
    nodes.append(
        _node(
            fab,
            node_id="poster",
            step="poster",
            variant={},
            prompt=HOSTILE_PROMPT,
            model="imagen-4",
            aspect="portrait",
            count=1,
            seed=99,
            deps=["hero"],
            references=[style],
        )
    )
    nodes.append(
        _node(
            fab,
            node_id="banner",
            step="banner",
            variant={},
            prompt="forbidden banner of the shoe",
            model="imagen-4",
            aspect="landscape",
            count=2,
            seed=7,
            deps=[],
            references=[],
            status="failed",
            error=ErrorInfo(
                type="ModerationError",
                status=500,
                reason="PUBLIC_ERROR_UNSAFE_GENERATION",
                message=HOSTILE_ERROR,
                hint="reword the prompt, or allow fallback_model: nano-banana",
            ),
        )
    )
    nodes.append(
        _node(
            fab,
            node_id="banner_crop",
            step="banner_crop",
            variant={},
            prompt="square crop of the banner",
            model="imagen-4",
            aspect="square",
            count=1,
            seed=8,
            deps=["banner"],
            references=[ManifestRef("context", "banner.0", None)],
            status="skipped",
            error=ErrorInfo(type="Skipped", message="upstream node 'banner' failed"),
        )
    )
    bulk_ids = []
    for n in range(bulk_variants):
        node_id = f"variations[n={n}]"
        bulk_ids.append(node_id)
        nodes.append(
            _node(
                fab,
                node_id=node_id,
                step="variations",
                variant={"n": str(n)},
                prompt=f"colourway study {n} of the trail running shoe",
                model="imagen-4",
                aspect="landscape",
                count=4,
                seed=5000 + n * 4,
                deps=[],
                references=[],
            )
        )
    manifest = Manifest(
        recipe_name="trail-shoe-launch",
        recipe_path="examples/campaign.yaml",
        backend="sim",
        steps=steps_of(nodes),
        nodes=tuple(nodes),
    )
    write_manifest(out, manifest)
    fab.manifest = manifest.to_json()
    cached = {"hero", closeups[0], closeups[1]}
    run_nodes = {
        n.id: NodeRun(
            cache_hit=n.id in cached,
            seconds=0.0 if n.id in cached else n.generation_seconds,
            attempts=0 if n.id in cached else n.attempts,
            account=ACCOUNT if i % 3 else ACCOUNT_B,
        )
        for i, n in enumerate(nodes)
        if n.status != "skipped"
    }
    done = sum(n.status == "done" for n in nodes)
    window, inflight, rejections = _timeline()
    log = RunLog(
        recipe_name=manifest.recipe_name,
        recipe_path=manifest.recipe_path,
        backend_kind="sim",
        base_url="http://127.0.0.1:41234/v1/google-flow",
        started_at="2026-11-25T10:00:00Z",
        finished_at="2026-11-25T10:00:41Z",
        wall_seconds=41.3,
        outcome="failed",
        exit_code=1,
        summary={
            "nodes": len(nodes),
            "done": done,
            "cached": len(cached),
            "failed": 1,
            "skipped": 1,
            "images": len(fab.image_paths),
            "api_calls": done - len(cached) + 3,
            "uploads": 1,
            "retries": 4,
            "rejections": 2,
        },
        nodes=run_nodes,
        window=window,
        inflight=inflight,
        rejections=rejections,
    )
    fab.run = log.to_json()
    if with_run:
        write_run_log(out, log)
    return fab


Point = tuple[float, str, int]


def _timeline() -> tuple[tuple[Point, ...], tuple[Point, ...], tuple[Point, ...]]:
    window = (
        (0.0, ACCOUNT, 3),
        (4.1, ACCOUNT, 4),
        (8.0, ACCOUNT, 6),
        (12.5, ACCOUNT, 10),
        (17.0, ACCOUNT, 7),
        (25.0, ACCOUNT, 9),
        (0.0, ACCOUNT_B, 3),
        (9.0, ACCOUNT_B, 5),
    )
    inflight = (
        (0.0, ACCOUNT, 0),
        (0.2, ACCOUNT, 3),
        (4.3, ACCOUNT, 4),
        (8.2, ACCOUNT, 6),
        (12.7, ACCOUNT, 10),
        (16.9, ACCOUNT, 7),
        (22.0, ACCOUNT, 5),
        (30.0, ACCOUNT, 2),
        (38.0, ACCOUNT, 0),
        (0.1, ACCOUNT_B, 2),
        (9.1, ACCOUNT_B, 4),
        (27.0, ACCOUNT_B, 1),
        (35.0, ACCOUNT_B, 0),
    )
    rejections = ((16.8, ACCOUNT, 429), (17.0, ACCOUNT, 503))
    return window, inflight, rejections


__all__ = [
    "ACCOUNT",
    "ACCOUNT_B",
    "HOSTILE_ERROR",
    "HOSTILE_PALETTE",
    "HOSTILE_PROMPT",
    "XSS_ATTR",
    "XSS_SCRIPT",
    "Fabricated",
    "fabricate_output",
]
