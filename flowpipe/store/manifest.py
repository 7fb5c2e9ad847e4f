"""manifest.json and RECIPE.lock.json: what was made, and from exactly what.

Both are pure functions of the plan and the node results, with nothing about when
the run happened or whether the cache answered, so a cached re-run writes the same
bytes (docs/outputs.md). What this run did goes to run.json instead.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowpipe.errors import FrozenCacheMissError
from flowpipe.planner import Plan, node_request

if TYPE_CHECKING:
    from flowpipe.engine.scheduler import NodeResult

__all__ = ["build_lock", "build_manifest", "check_lock", "lock_path", "read_lock"]

FORMAT = 1


def lock_path(recipe: Path) -> Path:
    """``campaign.yaml`` locks into ``campaign.lock.json`` beside it."""
    return recipe.with_name(f"{recipe.stem}.lock.json")


def _recipe_info(plan: Plan) -> dict[str, str]:
    return {"name": plan.name, "path": plan.recipe_path.name}


def build_manifest(plan: Plan, results: Mapping[str, NodeResult]) -> dict[str, Any]:
    """Every node, its key, request, references and images (docs/outputs.md)."""
    steps: dict[str, dict[str, Any]] = {}
    nodes = []
    for nid, node in plan.nodes.items():
        res = results[nid]
        step = steps.setdefault(node.step, {"id": node.step, "matrix": {}, "nodes": []})
        step["nodes"].append(nid)
        for name, value in node.variant:
            values = step["matrix"].setdefault(name, [])
            if value not in values:
                values.append(value)
        refs = node.refs
        complete = len(res.ref_hashes) == len(refs)
        request = node_request(node, res.ref_hashes) if complete else None
        gen = res.generation
        nodes.append(
            {
                "id": nid,
                "step": node.step,
                "variant": dict(node.variant),
                "status": res.status,
                "key": res.key or node.provisional_key,
                "deps": list(dict.fromkeys(node.deps)),
                "prompt": node.prompt,
                "request": request,
                "references": [
                    {"role": r.role, "text": r.text, "sha256": res.ref_hashes.get(r)}
                    for r in refs
                ],
                "model_used": gen.model_used if gen else None,
                "attempts": gen.attempts if gen else res.attempts.sent,
                "generation_seconds": gen.generation_seconds if gen else None,
                "images": [
                    {
                        "index": i,
                        "path": f"{node.out_dir}/{i}.jpg",
                        "sha256": img.sha256,
                        "width": img.width,
                        "height": img.height,
                        "seed": img.seed,
                        "media_generation_id": img.media_generation_id,
                    }
                    for i, img in enumerate(gen.images if gen else ())
                ],
                "error": res.error.as_dict() if res.error else None,
            }
        )
    return {
        "format": FORMAT,
        "recipe": _recipe_info(plan),
        "backend": plan.backend,
        "steps": list(steps.values()),
        "nodes": nodes,
    }


def build_lock(
    plan: Plan, results: Mapping[str, NodeResult], previous: Path | None = None
) -> dict[str, Any]:
    """Each finished node's key and image hashes, in plan order.

    A node that did not finish this time (a stopped or interrupted run) keeps its
    entry from the ``previous`` lock, so a short run never erases a committed lock.
    """
    old: dict[str, Any] = {}
    if previous is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            loaded = json.loads(previous.read_text(encoding="utf-8"))
            if loaded.get("backend") == plan.backend and isinstance(loaded.get("nodes"), dict):
                old = loaded["nodes"]
    nodes: dict[str, Any] = {}
    for nid in plan.nodes:
        res = results[nid]
        if res.status == "done" and res.key and res.generation:
            nodes[nid] = {
                "key": res.key,
                "images": [img.sha256 for img in res.generation.images],
            }
        elif nid in old:
            nodes[nid] = old[nid]
    return {"format": FORMAT, "recipe": plan.name, "backend": plan.backend, "nodes": nodes}


def read_lock(path: Path) -> dict[str, str]:
    """The locked key of every node (for ``--frozen``); a missing lock is a miss."""
    try:
        nodes = json.loads(path.read_text(encoding="utf-8"))["nodes"]
        return {nid: str(entry["key"]) for nid, entry in nodes.items()}
    except FileNotFoundError:
        raise FrozenCacheMissError(
            f"--frozen: no lock file {path.name}",
            hint="run once without --frozen and commit the lock file",
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FrozenCacheMissError(f"--frozen: cannot read {path.name}: {exc}") from exc


def check_lock(locked: Mapping[str, str], lock_name: str, nid: str, key: str) -> None:
    """Under ``--frozen``: a node whose key is not the locked one is a miss."""
    if locked.get(nid) != key:
        raise FrozenCacheMissError(
            f"--frozen: node '{nid}' changed since {lock_name} was written",
            hint="run without --frozen to regenerate it, then commit the new lock file",
        )
