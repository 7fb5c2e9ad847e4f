"""Time ``validate`` + ``plan`` on generated matrix recipes of 1k, 10k and 100k nodes.

Usage: .venv/bin/python benchmarks/plan_overhead.py [--sizes 1000,10000,100000]
       [--repeat 3] [--shapes matrix,flat]

``matrix`` recipes have steps of 100 nodes (a 10 x 10 matrix); every step after the
first uses image 0 of the matching variant of the step before it and a logo asset, so
every provisional key chains. ``flat`` recipes write every node as its own step (one
context reference to the step before), which is all YAML and schema work. The time is the best of
``--repeat`` runs of ``build_plan`` (load, schema, expand, render, resolve, order,
keys) in this process, after one warm-up; CPU time is shown too because on a shared
machine it is the steadier number.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tempfile
import time
from pathlib import Path

from PIL import Image

from flowpipe.planner import build_plan

VARIANTS = 100  # nodes per step: a 10 x 10 matrix


def write_matrix_recipe(folder: Path, nodes: int) -> Path:
    """Write ``folder/recipe.yaml`` (and its asset) with ``nodes`` nodes; return its path."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 128, 128)).save(buf, format="PNG")
    (folder / "logo.png").write_bytes(buf.getvalue())
    steps = max(1, nodes // VARIANTS)
    lines = [
        "version: 1",
        f"name: bench-{nodes}",
        "defaults: {model: imagen-4, aspectRatio: square, count: 2}",
        "vars: {product: trail running shoe, light: golden hour}",
        "assets: {logo: logo.png}",
        "steps:",
    ]
    values = ", ".join(str(i) for i in range(10))
    for s in range(steps):
        lines += [
            f"  s{s}:",
            f"    matrix: {{a: [{values}], b: [{values}]}}",
            f"    prompt: \"{{{{ product }}}} number {s}, variant {{{{ a }}}}/{{{{ b }}}}, "
            "{{ light }}\"",
        ]
        if s:
            lines.append(f"    context: [\"s{s - 1}[a={{{{ a }}}},b={{{{ b }}}}].0\", assets.logo]")
    path = folder / "recipe.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_flat_recipe(folder: Path, nodes: int) -> Path:
    """Write ``folder/recipe.yaml`` with ``nodes`` steps and no matrix; return its path."""
    lines = ["version: 1", f"name: flat-{nodes}", "vars: {product: trail running shoe}", "steps:"]
    for s in range(nodes):
        lines += [f"  s{s}:", f'    prompt: "{{{{ product }}}} number {s}"', "    count: 2"]
        if s:
            lines.append(f"    context: [s{s - 1}.1]")
    path = folder / "recipe.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def time_plan(path: Path, repeat: int) -> tuple[float, float, int]:
    """Best wall and CPU seconds of ``repeat`` plans of ``path``, and the node count."""
    count = len(build_plan(path).nodes)  # warm-up: imports, schema
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        build_plan(path)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", default="matrix,flat")
    args = parser.parse_args()
    writers = {"matrix": write_matrix_recipe, "flat": write_flat_recipe}
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    print(f"{'shape':<7} {'nodes':>8}  {'wall s':>8}  {'cpu s':>8}  {'µs/node':>8}")
    for shape in args.shapes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                path = writers[shape](Path(tmp), size)
                wall, cpu, count = time_plan(path, args.repeat)
            print(f"{shape:<7} {count:>8}  {wall:>8.3f}  {cpu:>8.3f}  {wall / count * 1e6:>8.1f}")


if __name__ == "__main__":
    main()
