"""What ``flowpipe validate`` and ``flowpipe plan`` print: plans for people and for JSON.

The CLI only calls these; the text is built here so it can be tested without a shell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from flowpipe.errors import RecipeError, RecipeErrors
from flowpipe.planner import Plan, Ref, build_plan
from flowpipe.recipe.messages import one_line

__all__ = ["PLAN_JSON_FORMAT", "plan_json", "plan_lines", "validate_recipes", "warning_lines"]

PLAN_JSON_FORMAT = 1
_PROMPT_CHARS = 100


def validate_recipes(
    paths: Sequence[Path],
    *,
    overrides: Mapping[str, object],
    echo: Callable[[str], None],
    warn: Callable[[str], None] | None = None,
) -> None:
    """Plan each recipe; ``echo`` an ``ok:`` line per good one, then raise all problems.

    ``warn`` gets each warning of a good recipe (an old model name, say) as one line.
    """
    problems: list[RecipeError] = []
    for path in paths:
        try:
            plan = build_plan(path, overrides=overrides)
        except RecipeErrors as exc:
            problems.extend(exc.errors)
            continue
        except RecipeError as exc:
            problems.append(exc)
            continue
        if warn is not None:
            for line in warning_lines(plan):
                warn(line)
        count = len(plan.nodes)
        echo(f"ok: {path} ({count} node{'s' if count != 1 else ''})")
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise RecipeErrors(problems)


def warning_lines(plan: Plan) -> list[str]:
    """The plan's warnings as ``file:line:col: warning: ...`` lines, in file order."""
    return [str(warning) for warning in plan.warnings]


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON: nodes in order with provisional keys and requests, edges, assets."""
    folder = plan.recipe_path.parent.resolve()
    return {
        "format": PLAN_JSON_FORMAT,
        "recipe": {"name": plan.name, "path": str(plan.recipe_path)},
        "backend": plan.backend,
        "api": plan.dialect,
        "accounts": list(plan.accounts),
        "assets": {
            name: {
                "path": asset.path.relative_to(folder).as_posix(),
                "sha256": asset.sha256,
                "mime": asset.mime,
                "size": asset.size,
            }
            for name, asset in plan.assets.items()
        },
        "nodes": [
            {
                "id": node.id,
                "step": node.step,
                "kind": node.kind,
                "variant": dict(node.variant),
                "out_dir": node.out_dir.as_posix(),
                "model": node.model,
                "aspectRatio": node.aspect_ratio,
                "count": node.count,
                "seed": node.seed,
                "fallback_model": node.fallback_model,
                "moderation_retries": node.moderation_retries,
                "resolution": node.resolution,
                "captchaRetry": node.captcha_retry,
                "deps": list(node.deps),
                "references": [_ref_json(r) for r in node.refs],
                "provisional_key": node.provisional_key,
                "request": plan.provisional_request(node.id),
                "location": str(node.location),
            }
            for node in plan.nodes.values()
        ],
        "edges": [list(edge) for edge in plan.edges],
    }


def _ref_json(ref: Ref) -> dict[str, Any]:
    return {
        "role": ref.role,
        "kind": ref.kind,
        "text": ref.text,
        "node": ref.node,
        "index": ref.index,
        "asset": ref.asset,
        "pick": ref.pick,
    }


def plan_lines(plan: Plan) -> Iterator[str]:
    """The plan for people: a header, one block per node in run order, the edges."""
    steps = len({n.step for n in plan.nodes.values()})
    images = sum(n.count for n in plan.nodes.values())
    assets = f"{len(plan.assets)} asset{'s' if len(plan.assets) != 1 else ''}"
    yield (
        f"{plan.recipe_path}: {plan.name!r}: {len(plan.nodes)} nodes from {steps} steps, "
        f"{images} images, {assets}, backend {plan.backend}, api {plan.dialect}"
    )
    width = min(40, max((len(i) for i in plan.nodes), default=4))
    models = max((len(n.model) for n in plan.nodes.values()), default=11)
    for number, node in enumerate(plan.nodes.values(), 1):
        seed = "random" if node.seed is None else str(node.seed)
        uses = ", ".join(f"{r.role} {r.text}" for r in node.refs) or "-"
        what = (
            f"upscale {node.resolution}" if node.kind == "upscale"
            else f"x{node.count}  seed {seed:<10}"
        )
        yield (
            f"{number:>5}  {node.id:<{width}}  {node.model:<{models}}  {node.aspect_ratio:<9}  "
            f"{what}  key {node.provisional_key[:12]}  uses {uses}"
        )
        if node.kind != "upscale":
            yield f"{'':>7}prompt: {one_line(node.prompt, _PROMPT_CHARS)!r}"
    yield f"edges ({len(plan.edges)}):"
    for upstream, downstream in plan.edges:
        yield f"  {upstream} -> {downstream}"
