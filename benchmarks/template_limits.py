"""What the template limits cost ordinary prompts, and what one render costs at the limits.

Usage: .venv/bin/python benchmarks/template_limits.py [--renders 10000] [--worst-recipe]

1. Ordinary templates (filters, loops over a list, conditions, a macro, formatting) are
   rendered ``--renders`` times by Jinja's plain ``ImmutableSandboxedEnvironment`` (the
   baseline, without limits) and by flowpipe's ``Renderer`` (with them), side by side
   in this process, each template compiled once: microseconds per render.
2. For each kind of step, a template that runs until the 100,000-step limit stops it:
   seconds until the error (what the slowest refused template costs a render).
3. ``--worst-recipe``: 100,000 nodes whose template each take 100 steps, which is the
   recipe-wide limit of 10,000,000 steps: seconds to plan it (the slowest a recipe can
   be and still be accepted, give or take the per-render limits).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from flowpipe.errors import Location, TemplateError
from flowpipe.recipe.render import Renderer

VARS: dict[str, Any] = {
    "product": "trail running shoe",
    "palettes": ["teal", "amber", "slate", "coral"],
    "angle": "side",
    "n": 7,
    "light": {"time": "golden hour", "strength": 0.8},
}
ORDINARY = {
    "filters": (
        "{{ product|title }} in {{ palettes|join(' and ')|upper }}, {{ angle|default('front') }}"
    ),
    "loop": (
        "{% for p in palettes %}{{ loop.index }}. {{ p }}{% if not loop.last %}, {% endif %}"
        "{% endfor %}"
    ),
    "condition": (
        "{% if n is odd and angle == 'side' %}side view{% else %}front view{% endif %} "
        "of {{ product }}"
    ),
    "macro": (
        "{% macro shot(p) %}[{{ p|capitalize }} {{ product }}]{% endmacro %}"
        "{{ shot(palettes[0]) }} {{ shot(angle) }}"
    ),
    "format": (
        "{{ '%s, %d%% %s light' % (product, light.strength * 100, light.time) }} "
        "{{ '{:>6}'.format(angle) }}"
    ),
}
AT_THE_LIMIT = {
    "loop turns": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "filter calls": "{% for i in range(100000) %}{% set x = i|string %}{% endfor %}",
    "lookups": "{% for i in range(100000) %}{% set x = palettes[0] %}{% endfor %}",
    "comparisons": "{% for i in range(100000) %}{% if i == n %}{% endif %}{% endfor %}",
    "printf": "{% for i in range(100000) %}{% set x = '%d' % i %}{% endfor %}",
    "str.format": "{% for i in range(100000) %}{% set x = '{}'.format(i) %}{% endfor %}",
    "macro calls": (
        "{% macro f(d) %}{% if d < 40 %}{{ f(d + 1) }}{{ f(d + 1) }}{% endif %}{% endmacro %}"
        "{{ f(0) }}"
    ),
    "recursive loop": (
        "{% for x in [1, 2] recursive %}{% if loop.depth < 40 %}{{ loop([1, 2]) }}"
        "{{ loop([1, 2]) }}{% endif %}{% endfor %}"
    ),
    "work (big joins)": (
        "{% for i in range(1000) %}{% set x = ('y' * 90000)|upper %}{% endfor %}"
    ),
}


def where(line: int) -> Location:
    return Location("bench.yaml", line, 1)


def ordinary(renders: int) -> None:
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    bounded = Renderer()
    print(f"\n1. ordinary templates, {renders:,} renders each (µs per render)")
    print(f"{'template':12s} {'jinja':>8s} {'flowpipe':>9s} {'ratio':>6s}")
    for name, source in ORDINARY.items():
        template = plain.from_string(source)
        what = functools.partial(str, name)
        assert bounded.render(source, VARS, what=what, where=where) == template.render(VARS)
        started = time.perf_counter()
        for _ in range(renders):
            template.render(VARS)
        base = (time.perf_counter() - started) / renders * 1e6
        started = time.perf_counter()
        for _ in range(renders):
            bounded.render(source, VARS, what=what, where=where)
        ours = (time.perf_counter() - started) / renders * 1e6
        print(f"{name:12s} {base:8.1f} {ours:9.1f} {ours / base:6.2f}")


def at_the_limit() -> None:
    print("\n2. one render that runs into the limits (seconds until refused, best of 3)")
    for name, source in AT_THE_LIMIT.items():
        best = float("inf")
        message = ""
        for _ in range(3):
            started = time.perf_counter()
            try:
                Renderer().render(source, VARS, what=functools.partial(str, name), where=where)
                message = "rendered"
            except TemplateError as exc:
                message = exc.message.split(": ", 2)[-1][:60]
            best = min(best, time.perf_counter() - started)
        print(f"{name:18s} {best:6.3f} s  {message}")


def worst_recipe() -> None:
    from flowpipe.planner import build_plan

    a_values, b_values = ", ".join(map(str, range(100))), ", ".join(map(str, range(10)))
    steps = "".join(
        f"  s{s}:\n    matrix: {{a: [{a_values}], b: [{b_values}]}}\n"
        "    prompt: \"{% for i in range(95) %}{% endfor %}{{ a }} {{ b }}\"\n"
        for s in range(100)
    )
    text = "version: 1\nname: worst\ndefaults: {count: 1}\nsteps:\n" + steps
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "worst.yaml"
        path.write_text(text)
        started = time.perf_counter()
        cpu = time.process_time()
        try:
            plan = build_plan(path)
            outcome = f"{len(plan.nodes):,} nodes planned"
        except Exception as exc:
            outcome = str(exc).splitlines()[0][:100]
        print(f"\n3. 100,000 nodes x ~100 steps: {time.perf_counter() - started:.1f} s wall, "
              f"{time.process_time() - cpu:.1f} s CPU: {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=10_000)
    parser.add_argument("--worst-recipe", action="store_true")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores,"
          f" load {os.getloadavg()[0]:.1f}")
    ordinary(args.renders)
    at_the_limit()
    if args.worst_recipe:
        worst_recipe()


if __name__ == "__main__":
    main()
