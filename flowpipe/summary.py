"""What ``flowpipe validate`` and ``flowpipe plan`` print: plans for people and for JSON.

The CLI only calls these; the text is built here so it can be tested without a shell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowpipe.errors import RecipeError, RecipeErrors, UsageError
from flowpipe.planner import Plan, Ref, build_plan
from flowpipe.recipe.messages import did_you_mean, one_line

if TYPE_CHECKING:  # verdicts read the cache and the lock: `validate` never needs them
    from flowpipe.why import Verdict

__all__ = [
    "PLAN_JSON_FORMAT",
    "plan_json",
    "plan_lines",
    "plan_with_verdicts",
    "validate_recipes",
    "warning_lines",
    "why_lines",
]

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


def plan_with_verdicts(
    recipe: Path,
    *,
    overrides: Mapping[str, object],
    backend: str,
    out: Path | None,
    cache_dir: Path | None,
    refresh: Sequence[str],
    lock_path: Path | None,
) -> tuple[Plan, dict[str, Verdict]]:
    """The plan and each node's verdict as `run` with these options would see them;
    ``backend`` ``auto`` is where a token sends, else the committed lock's (what a frozen
    run checks: ``keys_backend``), else sim; ``refresh`` ``*`` every step."""
    from flowpipe.engine.backend import keys_backend
    from flowpipe.why import verdicts

    kind = backend if backend != "auto" else keys_backend("auto", recipe, None, None,
                                                          lock_first=False)
    plan = build_plan(recipe, overrides=overrides, backend=kind)
    found = verdicts(plan, out=out, cache_dir=cache_dir, variables=bool(overrides),
                     lock_path=lock_path, refresh_all="*" in refresh,
                     refresh_steps=frozenset(r for r in refresh if r != "*"))
    return plan, found


def warning_lines(plan: Plan) -> list[str]:
    """The plan's warnings as ``file:line:col: warning: ...`` lines, in file order."""
    return [str(warning) for warning in plan.warnings]


def plan_json(plan: Plan, verdicts: Mapping[str, Verdict] | None = None) -> dict[str, Any]:
    """The plan as JSON: nodes in order with provisional keys and requests, edges, assets;
    with ``verdicts``, each node's ``state`` (cached, new or changed) and ``why``."""
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
                "out_dir": node.out_dir,
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
                **_verdict_json(verdicts, node.id),
            }
            for node in plan.nodes.values()
        ],
        "edges": [list(edge) for edge in plan.edges],
    }


def _verdict_json(verdicts: Mapping[str, Verdict] | None, node_id: str) -> dict[str, Any]:
    if verdicts is None:
        return {}
    verdict = verdicts[node_id]
    return {"state": verdict.state, "why": list(verdict.why)}


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


def plan_lines(plan: Plan, verdicts: Mapping[str, Verdict] | None = None) -> Iterator[str]:
    """The plan for people: a header, one block per node in run order, the edges; with
    ``verdicts``, each node's state and why."""
    steps = len({n.step for n in plan.nodes.values()})
    images = sum(n.count for n in plan.nodes.values())
    assets = f"{len(plan.assets)} asset{'s' if len(plan.assets) != 1 else ''}"
    yield (
        f"{plan.recipe_path}: {plan.name!r}: {len(plan.nodes)} nodes from {steps} steps, "
        f"{images} images, {assets}, backend {plan.backend}, api {plan.dialect}"
    )
    if verdicts is not None:
        from flowpipe.why import STATES

        counts = {s: sum(v.state == s for v in verdicts.values()) for s in STATES}
        yield ", ".join(f"{n} {s}" for s, n in counts.items())
    width = min(40, max((len(i) for i in plan.nodes), default=4))
    models = max((len(n.model) for n in plan.nodes.values()), default=11)
    for number, node in enumerate(plan.nodes.values(), 1):
        seed = "random" if node.seed is None else str(node.seed)
        uses = ", ".join(f"{r.role} {r.text}" for r in node.refs) or "-"
        what = (
            f"upscale {node.resolution}" if node.kind == "upscale"
            else f"x{node.count}  seed {seed:<10}"
        )
        state = f"{verdicts[node.id].state:<8}" if verdicts is not None else ""
        yield (
            f"{number:>5}  {state}{node.id:<{width}}  {node.model:<{models}}  "
            f"{node.aspect_ratio:<9}  {what}  key {node.provisional_key[:12]}  uses {uses}"
        )
        if node.kind != "upscale":
            yield f"{'':>7}prompt: {one_line(node.prompt, _PROMPT_CHARS)!r}"
        for reason in verdicts[node.id].why if verdicts is not None else ():
            yield f"{'':>7}why: {reason}"
    yield f"edges ({len(plan.edges)}):"
    for upstream, downstream in plan.edges:
        yield f"  {upstream} -> {downstream}"


def why_lines(plan: Plan, verdicts: Mapping[str, Verdict], node_id: str) -> Iterator[str]:
    """``flowpipe why``: the node's state and reasons, then the upstream nodes that are
    not cached, indented beneath it, all the way up."""
    if node_id not in plan.nodes:
        raise UsageError(
            f"no node {node_id!r} in {plan.recipe_path}"
            f"{did_you_mean(node_id, list(plan.nodes), listing=6)}",
            hint="node ids are as `flowpipe plan` lists them, e.g. closeup[angle=side]",
        )
    from flowpipe.why import chain

    for depth, line in chain(plan, verdicts, node_id):
        yield "  " * depth + line
