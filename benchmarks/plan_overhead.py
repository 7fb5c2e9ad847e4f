"""Time ``validate`` + ``plan`` on generated recipes of 1k, 10k and 100k nodes, by phase.

Usage: .venv/bin/python benchmarks/plan_overhead.py [--sizes 1000,10000,100000]
       [--repeat 3] [--shapes matrix,flat] [--baseline DIR]

``matrix`` recipes have steps of 100 nodes (a 10 x 10 matrix); every step after the
first uses image 0 of the matching variant of the step before it and a logo asset, so
every provisional key chains. ``flat`` recipes write every node as its own step (one
context reference to the step before), which is mostly YAML and schema work.

Each case runs in a fresh process: one warm-up plan (imports, schema), then ``--repeat``
rounds; each figure is the best round. ``total`` is one ``build_plan(path)``, what
``validate`` and ``plan`` do before printing. The phases are timed apart, each from the
output of the one before: ``compose`` is libyaml turning the text into a node tree (the
YAML parser's share); ``positions`` is flowpipe's loader turning that tree into data with
a ``file:line:col`` per value (``load_document`` less ``compose``); ``schema`` is
``validate_document``; ``expand`` is the dialect check and ``expand`` (matrices,
defaults, templates rendered); ``plan`` is ``build_plan`` of the loaded recipe less
``expand`` (assets, references, models, order, provisional keys). The cyclic GC is off
while the phases run, as it is inside ``build_plan``. Times are CPU seconds
(``time.process_time``), steadier than wall time on a shared machine; ``wall`` is the
total's wall time.

``--baseline DIR`` runs every case also against the flowpipe package in DIR (another
checkout, e.g. ``git worktree add ../base main``), in alternation with this one, so
both are measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VARIANTS = 100  # nodes per step: a 10 x 10 matrix
PHASES = ("compose", "positions", "schema", "expand", "plan")
HERE = Path(__file__).resolve().parents[1]


def write_matrix_recipe(folder: Path, nodes: int) -> Path:
    """Write ``folder/recipe.yaml`` (and its asset) with ``nodes`` nodes; return its path."""
    from PIL import Image

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


WRITERS = {"matrix": write_matrix_recipe, "flat": write_flat_recipe}


def _cpu(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.process_time()
    result = func()
    return time.process_time() - start, result


def measure(path: Path, repeat: int) -> dict[str, Any]:
    """Best CPU seconds per phase and in total (and the total's wall) over ``repeat``."""
    from flowpipe.planner import build_plan

    count = len(build_plan(path).nodes)  # warm-up: imports, schema, compiled code
    best: dict[str, float] = dict.fromkeys((*PHASES, "total", "wall"), float("inf"))
    for _ in range(repeat):
        gc.collect()
        gc.disable()  # as build_plan does: the phases would otherwise pay for collections
        took = _phases(path)
        gc.enable()
        wall = time.perf_counter()
        took["total"], _ = _cpu(lambda: build_plan(path))
        took["wall"] = time.perf_counter() - wall
        best = {k: min(v, took[k]) for k, v in best.items()}
    return {"nodes": count, **best}


def _phases(path: Path) -> dict[str, float]:
    """CPU seconds of each phase of one plan, each phase fed by the one before."""
    import yaml

    from flowpipe.planner import Recipe, build_plan
    from flowpipe.recipe.dialect import check_dialect
    from flowpipe.recipe.expand import expand
    from flowpipe.recipe.load import load_document
    from flowpipe.recipe.messages import ErrorList, WarningList
    from flowpipe.recipe.validate import validate_document

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = path.read_text(encoding="utf-8")
    took: dict[str, float] = {}
    took["compose"], _ = _cpu(lambda: yaml.compose(text, Loader=loader))
    load, doc = _cpu(lambda: load_document(path))
    took["positions"] = load - took["compose"]
    took["schema"], _ = _cpu(lambda: validate_document(doc))

    def expand_all() -> None:
        errors, warnings = ErrorList(), WarningList()
        spoken = check_dialect(doc, errors, warnings)
        expand(doc, {}, errors, spoken=spoken, warnings=warnings)

    took["expand"], _ = _cpu(expand_all)
    planned, _ = _cpu(lambda: build_plan(Recipe(path, doc)))
    took["plan"] = planned - took["expand"]
    return took


def _child(shape: str, size: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = WRITERS[shape](Path(tmp), size)
        print(json.dumps(measure(path, repeat)))


def _run_child(tree: Path, shape: str, size: int, repeat: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import plan_overhead; plan_overhead._child({shape!r}, {size}, {repeat})")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=tree).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", default="matrix,flat")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout whose flowpipe package runs beside this one")
    args = parser.parse_args()
    trees = [("this", HERE)]
    if args.baseline is not None:
        trees.insert(0, ("baseline", args.baseline.resolve()))
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores;"
          f" CPU seconds, best of {args.repeat}")
    head = "".join(f"{p:>10}" for p in (*PHASES, "total", "wall"))
    print(f"{'shape':<7}{'nodes':>8} {'tree':<9}{head}{'yaml %':>8}{'µs/node':>9}")
    for shape in args.shapes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for name, tree in trees:
                r = _run_child(tree, shape, size, args.repeat)
                cells = "".join(f"{r[k]:>10.3f}" for k in (*PHASES, "total", "wall"))
                share = 100 * r["compose"] / r["total"]
                print(f"{shape:<7}{r['nodes']:>8} {name:<9}{cells}{share:>7.0f}%"
                      f"{r['total'] / r['nodes'] * 1e6:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
