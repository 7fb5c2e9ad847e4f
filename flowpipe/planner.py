"""The plan: an immutable DAG of request nodes with their cache keys.

``build_plan`` runs the recipe pipeline (load → validate → expand → resolve) and
returns exactly what ``run`` would do; nothing is sent anywhere. Each node's cache key
is the SHA-256 of the canonical JSON of ``{"backend": ..., "request": ...}`` where the
request is the API body less ``email`` and every reference is replaced by the SHA-256
of the bytes it points to. Assets' hashes are known now; images not made yet are
stood in for by ``node:<upstream key>#<index>`` in the *provisional* key, so a change
upstream changes every key downstream. The runner computes real keys with
``request_key`` once the upstream bytes exist.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Literal

from flowpipe.errors import Location, PlanError, ReferenceError_, UsageError
from flowpipe.recipe.assets import Asset, load_assets
from flowpipe.recipe.expand import Expansion, RawNode, RawRef, expand
from flowpipe.recipe.graph import Cycle, topological_order
from flowpipe.recipe.load import Document, load_document
from flowpipe.recipe.messages import ErrorList, quote
from flowpipe.recipe.refs import RefProblem, Target, resolve_reference
from flowpipe.recipe.rules import IMAGEN, auto_model, default_fallback, model_problem
from flowpipe.recipe.validate import validate_document

__all__ = [
    "BACKENDS",
    "Asset",
    "Node",
    "Plan",
    "Recipe",
    "Ref",
    "build_plan",
    "canonical_json",
    "load_recipe",
    "node_request",
    "request_key",
]

BACKENDS = ("sim", "useapi")


@dataclass(frozen=True, slots=True)
class Ref:
    """A resolved reference: image ``index`` of ``node``, or asset ``asset``."""

    role: Literal["style", "context"]
    kind: Literal["node", "asset"]
    node: str | None
    index: int | None
    asset: str | None
    text: str
    location: Location


@dataclass(frozen=True, slots=True)
class Node:
    """One API request of the plan, with everything its key depends on."""

    id: str
    step: str
    variant: tuple[tuple[str, str], ...]
    out_dir: PurePosixPath
    prompt: str
    model: str
    aspect_ratio: str
    count: int
    seed: int | None
    style: Ref | None
    context: tuple[Ref, ...]
    fallback_model: str | None
    moderation_retries: int
    deps: tuple[str, ...]
    provisional_key: str
    location: Location

    @property
    def refs(self) -> tuple[Ref, ...]:
        """Style first, then context references, in request order."""
        return (self.style, *self.context) if self.style else self.context


@dataclass(frozen=True, slots=True)
class Plan:
    """An immutable DAG of nodes in topological order (recipe order where free)."""

    recipe_path: Path
    name: str
    backend: str
    nodes: Mapping[str, Node]
    assets: Mapping[str, Asset]
    edges: tuple[tuple[str, str], ...]
    accounts: tuple[str, ...] = ()

    def critical_path(self) -> Mapping[str, float]:
        """Per node, the longest path from it to a sink, counted in nodes (itself included)."""
        length = dict.fromkeys(self.nodes, 1.0)
        for node_id in reversed(list(self.nodes)):  # children come later in the order
            for dep in self.nodes[node_id].deps:
                length[dep] = max(length[dep], 1.0 + length[node_id])
        return length

    def provisional_request(self, node_id: str) -> dict[str, Any]:
        """The request behind ``provisional_key``: images not made yet as ``node:KEY#N``."""
        node = self.nodes[node_id]
        return _request(node, {r: _provisional_ref(r, self.nodes, self.assets) for r in node.refs})


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding keys are computed over: sorted keys, no spaces, UTF-8."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def node_request(node: Node, ref_hashes: Mapping[Ref, str]) -> dict[str, Any]:
    """The API body less ``email``, each reference as ``sha256:<hex>`` of its bytes.

    ``ref_hashes`` maps each of the node's Refs to the hex SHA-256 of the bytes it
    points to (a ``sha256:`` prefix is accepted too).
    """
    texts: dict[Ref, str] = {}
    for ref in node.refs:
        try:
            digest = ref_hashes[ref]
        except KeyError:
            raise KeyError(f"no hash for reference {ref.text!r} of node {node.id!r}") from None
        texts[ref] = digest if digest.startswith("sha256:") else f"sha256:{digest}"
    return _request(node, texts)


def request_key(node: Node, ref_hashes: Mapping[Ref, str], backend: str) -> str:
    """The cache key of ``node`` once the bytes of all its references are known."""
    return _key(backend, node_request(node, ref_hashes))


@dataclass(frozen=True, slots=True)
class Recipe:
    """A recipe file, loaded and checked against the schema; ``build_plan`` plans it."""

    path: Path
    document: Document

    @property
    def name(self) -> str:
        return str(self.document.data["name"])


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Load and schema-check the recipe at ``path`` (a RecipeError says what is wrong)."""
    path = Path(path)
    document = load_document(path)
    validate_document(document)
    return Recipe(path, document)


def build_plan(
    recipe: str | os.PathLike[str] | Recipe,
    *,
    overrides: Mapping[str, object] = MappingProxyType({}),
    backend: str = "sim",
) -> Plan:
    """Load, validate, expand and resolve a recipe (a path or a loaded one) into a Plan.

    Raises one RecipeError, or RecipeErrors with every problem found in the pass.
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}", hint=f"use one of {', '.join(BACKENDS)}",
                         option="backend")
    with _gc_paused():
        if isinstance(recipe, Recipe):
            return _build(recipe.path, recipe.document, overrides, backend)
        path = Path(recipe)
        return _build(path, None, overrides, backend)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: planning allocates many small objects and frees none, so
    collections would re-scan a growing heap for nothing (a tenth of the time at 10k)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build(path: Path, doc: Document | None, overrides: Mapping[str, object],
           backend: str) -> Plan:
    if doc is None:
        doc = load_document(path)
        validate_document(doc)
    errors = ErrorList()
    expansion = expand(doc, overrides, errors)
    assets = load_assets(doc, path.parent, errors)
    resolver = _Resolver(expansion, assets, errors, declared=set(doc.data.get("assets") or ()))
    resolved = [r for r in map(resolver.resolve, expansion.nodes) if r is not None]
    errors.raise_if_any()
    by_id = {r.raw.id: r for r in resolved}
    try:
        order = topological_order(list(by_id), {i: r.deps for i, r in by_id.items()})
    except Cycle as cycle:
        raise _cycle_error(cycle.nodes, by_id) from None
    nodes: dict[str, Node] = {}
    for node_id in order:
        nodes[node_id] = by_id[node_id].build(nodes, assets, backend)
    return Plan(
        recipe_path=path,
        name=expansion.name,
        backend=backend,
        nodes=MappingProxyType(nodes),
        assets=MappingProxyType(assets),
        edges=tuple((dep, n.id) for n in nodes.values() for dep in n.deps),
        accounts=expansion.accounts,
    )


def _key(backend: str, request: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"backend": backend, "request": request})).hexdigest()


def _request(node: Node, ref_texts: Mapping[Ref, str]) -> dict[str, Any]:
    return _body(
        node.prompt, node.model, node.aspect_ratio, node.count, node.seed,
        style=ref_texts[node.style] if node.style else None,
        context=[ref_texts[r] for r in node.context],
    )


def _body(
    prompt: str, model: str, aspect_ratio: str, count: int, seed: int | None, *,
    style: str | None, context: list[str],
) -> dict[str, Any]:
    """The API's request body (less ``email``) with references already as text."""
    body: dict[str, Any] = {
        "prompt": prompt, "model": model, "aspectRatio": aspect_ratio, "count": count,
    }
    if seed is not None:
        body["seed"] = seed
    if style is not None:
        body["styleReference_1"] = style
    for i, text in enumerate(context, 1):
        body[f"contextReference_{i}"] = text
    return body


def _provisional_ref(ref: Ref, nodes: Mapping[str, Node], assets: Mapping[str, Asset]) -> str:
    if ref.kind == "asset":
        assert ref.asset is not None
        return f"sha256:{assets[ref.asset].sha256}"
    assert ref.node is not None
    return f"node:{nodes[ref.node].provisional_key}#{ref.index}"


@dataclass(frozen=True, slots=True)
class _Resolved:
    """A node whose references and model are settled, waiting for its key."""

    raw: RawNode
    model: str
    fallback: str | None
    style: Ref | None
    context: tuple[Ref, ...]
    deps: tuple[str, ...]

    def build(self, done: Mapping[str, Node], assets: Mapping[str, Asset], backend: str) -> Node:
        raw = self.raw
        body = _body(
            raw.prompt, self.model, raw.aspect_ratio, raw.count, raw.seed,
            style=_provisional_ref(self.style, done, assets) if self.style else None,
            context=[_provisional_ref(r, done, assets) for r in self.context],
        )
        return Node(
            id=raw.id, step=raw.step, variant=raw.variant, out_dir=raw.out_dir,
            prompt=raw.prompt, model=self.model, aspect_ratio=raw.aspect_ratio,
            count=raw.count, seed=raw.seed, style=self.style, context=self.context,
            fallback_model=self.fallback, moderation_retries=raw.moderation_retries,
            deps=self.deps, provisional_key=_key(backend, body), location=raw.location,
        )


class _Resolver:
    """Turns RawNodes into _Resolved ones: references, model choice, model rules."""

    def __init__(
        self,
        expansion: Expansion,
        assets: Mapping[str, Asset],
        errors: ErrorList,
        *,
        declared: set[str],
    ) -> None:
        self.steps = expansion.steps
        self.assets = assets
        self.broken_assets = declared - set(assets)  # already reported by load_assets
        self.errors = errors
        self._reported: set[tuple[str, str]] = set()  # (step, message) already said once
        self._targets: dict[str, Target | RefProblem] = {}  # by text: `hero.0` is used often

    def resolve(self, raw: RawNode) -> _Resolved | None:
        style = self._ref(raw, raw.style) if raw.style else None
        context = tuple(self._ref(raw, r) for r in raw.context)
        if (raw.style and style is None) or None in context:
            return None
        refs = tuple(r for r in context if r is not None)
        model = raw.model or auto_model(len(refs))
        problem = model_problem(model, has_style=style is not None, context_count=len(refs))
        if problem:
            self._fail(raw, _model_error(raw, model, problem, style))
            return None
        fallback, problem = default_fallback(
            raw.fallback, model, has_style=style is not None, context_count=len(refs)
        )
        if problem:
            self._fail(raw, PlanError(f"step {raw.id!r}: {problem}", raw.location,
                                      hint="set 'fallback_model: none' or fix the step"))
            return None
        deps = tuple(dict.fromkeys(r.node for r in (style, *refs) if r and r.node))
        return _Resolved(raw, model, fallback, style, refs, deps)

    def _ref(self, raw: RawNode, ref: RawRef) -> Ref | None:
        if ref.text.startswith("assets.") and ref.text[7:] in self.broken_assets:
            return None
        target = self._targets.get(ref.text)
        if target is None:
            try:
                target = resolve_reference(ref.text, steps=self.steps, assets=self.assets)
            except RefProblem as exc:
                target = exc
            self._targets[ref.text] = target
        if isinstance(target, RefProblem):
            self._fail(raw, ReferenceError_(
                f"step {raw.id!r}: {ref.role} {quote(ref.text)}: {target.message}",
                ref.location, hint=target.hint,
            ))
            return None
        if target.node == raw.id:
            self._fail(raw, ReferenceError_(
                f"step {raw.id!r}: {ref.role} {quote(ref.text)}: a node cannot use its own images",
                ref.location,
                hint="refer to an image of an earlier step",
            ))
            return None
        role: Literal["style", "context"] = "style" if ref.role == "style" else "context"
        kind: Literal["node", "asset"] = "asset" if target.asset is not None else "node"
        return Ref(role, kind, target.node, target.index, target.asset, ref.text, ref.location)

    def _fail(self, raw: RawNode, error: PlanError | ReferenceError_) -> None:
        """Say each problem of a matrix step once, not once per variant."""
        generic = str(error).replace(raw.id, raw.step)
        if (raw.step, generic) not in self._reported:
            self._reported.add((raw.step, generic))
            self.errors.add(error)


def _model_error(raw: RawNode, model: str, problem: str, style: Ref | None) -> PlanError:
    """The model cannot take the step's references: say why and which model can."""
    if style is not None and model != IMAGEN:
        where, hint = style.location, "set 'model: imagen-4' to use a style reference"
    else:
        where = raw.model_location or (raw.context[-1].location if raw.context else raw.location)
        hint = (
            "use at most 3 context references, or 'model: nano-banana' for 4"
            if model == IMAGEN else "use at most 4 context references"
        )
    chosen = "" if raw.model else f"no model is set, so the API would pick {model}, but "
    return PlanError(f"step {raw.id!r}: {chosen}{problem}", where, hint=hint)


def _cycle_error(cycle: tuple[str, ...], by_id: Mapping[str, _Resolved]) -> PlanError:
    """A cycle error at the reference that closes the loop, naming every node on it."""
    first, second = cycle[0], cycle[1]
    node = by_id[first]
    ref = next(
        (r for r in (node.style, *node.context) if r is not None and r.node == second), None
    )
    where = ref.location if ref else node.raw.location
    text = f"{ref.role} {quote(ref.text)}: " if ref else ""
    return PlanError(
        f"step {first!r}: {text}references form a cycle: {' -> '.join(cycle)}", where,
        hint="an image cannot depend on itself; remove one of these references",
    )
