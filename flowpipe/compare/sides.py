"""One side of a comparison: what each node asked for and which images it got.

A side is read from an output folder (its manifest; images from its files, else from
the cache by hash), from a lock file (keys and image hashes; the request and the
images come from the cache by key, so an edit that overwrote the folder still has its
old images to show), or from a recipe as it is now (its plan; keys resolved through
the cache in order, as a frozen run would, picks included).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowpipe.dialects import request_references
from flowpipe.errors import FlowpipeError, OutputError, UsageError
from flowpipe.planner import Node, Ref, build_plan, request_key
from flowpipe.store.jsonread import scalar_text
from flowpipe.store.lock import read_lock
from flowpipe.store.manifest import read_manifest
from flowpipe.store.outputs import OutputWriter
from flowpipe.store.provenance import strip
from flowpipe.store.responses import ResponseCache, sha256_hex
from flowpipe.why import plan_picks, ref_sha

__all__ = ["Side", "SideImage", "SideNode", "load_side"]


@dataclass(frozen=True, slots=True)
class SideImage:
    """One image: its hash (as the API made it) and its bytes when they can be found."""

    index: int
    sha256: str
    data: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SideNode:
    """What a node asked for and got; None where this side cannot know."""

    id: str
    key: str | None
    status: str
    prompt: str | None
    model: str | None
    seed: str | None
    aspect_ratio: str | None
    count: str | None
    references: tuple[tuple[str, str], ...]  # (reference, sha256 of its bytes or "")
    images: tuple[SideImage, ...]


@dataclass(frozen=True, slots=True)
class Side:
    """A labelled set of nodes, in their plan order."""

    label: str
    kind: str  # "folder", "lock" or "recipe"
    nodes: Mapping[str, SideNode]


def _request_refs(request: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """References as a cached request names them (field, hash), in the request's order
    (as a recipe's side lists them): the texts are not kept."""
    return tuple((k, str(request[k]).removeprefix("sha256:")) for k in request_references(request))


def _fields(request: Mapping[str, Any] | None) -> dict[str, str | None]:
    request = request or {}

    def text(key: str) -> str | None:
        return None if request.get(key) is None else scalar_text(request[key])

    return {"prompt": text("prompt"), "model": text("model"), "seed": text("seed"),
            "aspect_ratio": text("aspectRatio"), "count": text("count")}


def _cached(cache: ResponseCache | None, sha: str) -> bytes | None:
    return None if cache is None or not sha else cache.get_image(sha)


def _from_folder(out: Path, cache: ResponseCache | None) -> Side:
    manifest = read_manifest(out)
    files = OutputWriter(out)  # path_for refuses a manifest path that leaves the folder
    nodes = {}
    for node in manifest.nodes:
        images = []
        for img in node.images:
            data: bytes | None = None
            with contextlib.suppress(OSError, OutputError):
                data = strip(files.path_for(img.path).read_bytes())
            if data is None or sha256_hex(data) != img.sha256:
                data = _cached(cache, img.sha256)
            images.append(SideImage(img.index, img.sha256, data))
        fields = _fields(node.request)
        fields["prompt"] = node.prompt or fields["prompt"]
        if node.model_used:
            fields["model"] = node.model_used
        nodes[node.id] = SideNode(
            id=node.id, key=node.key or None, status=node.status, **fields,
            references=tuple((r.text, r.sha256 or "") for r in node.references),
            images=tuple(images),
        )
    return Side(str(out), "folder", nodes)


def _from_lock(path: Path, cache: ResponseCache | None) -> Side:
    try:
        lock = read_lock(path)
    except FlowpipeError as exc:
        raise UsageError(exc.message) from None
    nodes = {}
    for nid, entry in lock.nodes.items():
        hit = cache.get_generation(entry.key) if cache is not None else None
        gen, blobs = hit if hit else (None, [])
        request = gen.request if gen else None
        fields = _fields(request)
        if gen is not None:
            fields["model"] = gen.model_used
        images = tuple(
            SideImage(i, sha, blobs[i] if i < len(blobs) else _cached(cache, sha))
            for i, sha in enumerate(entry.images)
        )
        nodes[nid] = SideNode(
            id=nid, key=entry.key, status="done", **fields,
            references=_request_refs(request or {}), images=images,
        )
    return Side(str(path), "lock", nodes)


def _from_recipe(path: Path, cache: ResponseCache | None,
                 variables: Mapping[str, object], backend: str) -> Side:
    plan = build_plan(path, overrides=variables, backend=backend)
    picks = plan_picks(plan)
    got: dict[str, tuple[str, ...]] = {}
    nodes = {}
    for nid, node in plan.nodes.items():
        hashes = {ref: ref_sha(plan, ref, got, picks) or "" for ref in node.refs}
        key = request_key(node, hashes, plan.backend) if all(hashes.values()) else None
        hit = cache.get_generation(key) if cache is not None and key else None
        images: tuple[SideImage, ...] = ()
        if hit is not None:
            gen, blobs = hit
            images = tuple(SideImage(i, img.sha256, blobs[i]) for i, img in enumerate(gen.images))
            got[nid] = tuple(img.sha256 for img in gen.images)
        nodes[nid] = _plan_node(node, key, hashes, images)
    return Side(str(path), "recipe", nodes)


def _plan_node(node: Node, key: str | None, hashes: Mapping[Ref, str],
               images: tuple[SideImage, ...]) -> SideNode:
    return SideNode(
        id=node.id, key=key, status="done" if images else "not made",
        prompt=node.prompt, model=node.model,
        seed=None if node.seed is None else str(node.seed), aspect_ratio=node.aspect_ratio,
        count=str(node.count), references=tuple((r.text, hashes[r]) for r in node.refs),
        images=images,
    )


def load_side(path: Path, cache: ResponseCache | None, *,
              variables: Mapping[str, object], backend: str) -> Side:
    """A side from an output folder, a ``*.lock.json`` or a recipe (``.yaml``/``.yml``)."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path, cache)
    if path.name.endswith(".lock.json"):
        return _from_lock(path, cache)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _from_recipe(path, cache, variables, backend)
    if not path.exists():
        raise OutputError(f"{path}: no such output folder, lock file or recipe")
    raise UsageError(f"{path}: compare an output folder, a RECIPE.lock.json or a recipe")
