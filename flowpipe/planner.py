"""The plan: an immutable DAG of request nodes with their cache keys.

``build_plan`` runs the recipe pipeline (load → validate → expand → resolve) and
returns exactly what ``run`` would do; nothing is sent anywhere. Each node's cache key
is the SHA-256 of the canonical JSON of ``{"backend": ..., "request": ...}`` where the
request is the API body less ``email`` and every reference is replaced by the SHA-256
of the bytes it points to. Assets' hashes are known now; images not made yet are
stood in for by ``node:<upstream key>#<index>`` in the *provisional* key, so a change
upstream changes every key downstream. The runner computes real keys with
``request_key`` once the upstream bytes exist.

Dialects (``flowpipe.dialects``): a recipe without ``api:`` speaks 2025-11 and its
keys are exactly those of before dialects existed. Keys of other dialects add
``"dialect"`` and ``"endpoint"`` (``images`` or ``images/upscale``) beside ``backend``,
so equal bodies sent to different versions of the API never share a cache entry.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from flowpipe.dialects import Dialect, dialect
from flowpipe.errors import Location, PlanError, ReferenceError_, UsageError
from flowpipe.recipe.assets import Asset, load_assets
from flowpipe.recipe.dialect import check_dialect
from flowpipe.recipe.expand import Expansion, RawNode, RawRef, expand
from flowpipe.recipe.graph import Cycle, topological_order
from flowpipe.recipe.load import Document, load_document
from flowpipe.recipe.messages import ErrorList, RecipeWarning, WarningList, quote
from flowpipe.recipe.refs import RefProblem, Target, resolve_reference
from flowpipe.recipe.rules import default_fallback, model_problem, reference_hint
from flowpipe.recipe.validate import validate_document

__all__ = [
    "BACKENDS",
    "Asset",
    "Node",
    "NodeKind",
    "Plan",
    "Recipe",
    "RecipeWarning",
    "Ref",
    "build_plan",
    "canonical_json",
    "check_steps",
    "load_recipe",
    "node_request",
    "request_key",
    "request_refs",
]

BACKENDS = ("sim", "useapi")

NodeKind = Literal["generate", "upscale"]


@dataclass(frozen=True, slots=True)
class Ref:
    """A resolved reference: image ``index`` of ``node``, or asset ``asset``.

    ``role`` ``source`` is the image an upscale node enlarges. ``pick`` (``STEP.pick``):
    the image of ``node`` a reviewer picked in ``RECIPE.picks.yaml``; ``index`` is None
    and the run looks the pick up when ``node`` is made.
    """

    role: Literal["style", "context", "source"]
    kind: Literal["node", "asset"]
    node: str | None
    index: int | None
    asset: str | None
    text: str
    location: Location
    pick: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    """One API request of the plan, with everything its key depends on.

    ``kind`` says which endpoint makes it: ``generate`` (``POST /images``) or
    ``upscale`` (``POST /images/upscale``: ``source`` enlarged to ``resolution``; empty
    prompt, count 1, no seed; ``model`` and ``aspect_ratio`` are the source's).
    ``dialect`` is the API version its request speaks; ``captcha_retry`` is sent as
    ``captchaRetry`` where the dialect has one, and is not part of the key.
    """

    id: str
    step: str
    variant: tuple[tuple[str, str], ...]
    out_dir: str  # relative, posix: STEP/FOLDER
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
    dialect: str = "2025-11"
    kind: NodeKind = "generate"
    source: Ref | None = None
    resolution: str | None = None
    captcha_retry: int | None = None

    @property
    def refs(self) -> tuple[Ref, ...]:
        """Every image the request uses: an upscale's source, else style then context."""
        if self.source is not None:
            return (self.source,)
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
    dialect: str = "2025-11"
    warnings: tuple[RecipeWarning, ...] = ()

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
        return _request(node, lambda ref: _provisional_ref(ref, self.nodes, self.assets))


def check_steps(plan: Plan, steps: Iterable[str], *, option: str) -> None:
    """UsageError (about ``option``) naming any of ``steps`` the plan has no step of."""
    known = dict.fromkeys(node.step for node in plan.nodes.values())
    unknown = sorted(set(steps) - set(known))
    if unknown:
        raise UsageError(
            f"no step named {', '.join(unknown)} in {plan.recipe_path}",
            hint=f"steps: {', '.join(known)}", option=option,
        )


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding keys are computed over: sorted keys, no spaces, UTF-8."""
    return _encode(value).encode("utf-8")


def _canonical_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    without what it builds on every call: an encoder object and the C encoder inside it.

    The C encoder is made once, without the circular-reference check (a request is a
    tree; the check only chooses between an answer and an error); the pure-Python
    encoder, where there is no C one, is used as ``json.dumps`` would.
    """
    settings = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)  # not in the stubs: CPython's C half
    if make is None:  # pragma: no cover - CPython always has the C encoder
        return settings.encode
    encoder = make(None, settings.default, json.encoder.encode_basestring, None, ":", ",",
                   True, False, True)
    return lambda value: "".join(encoder(value, 0))  # what JSONEncoder.encode joins


_encode = _canonical_encoder()


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
    return _request(node, texts.__getitem__)


def request_key(node: Node, ref_hashes: Mapping[Ref, str], backend: str) -> str:
    """The cache key of ``node`` once the bytes of all its references are known."""
    return _key(node, backend, node_request(node, ref_hashes))


def request_refs(node: Node) -> Iterator[tuple[str, Ref]]:
    """Each request field that carries a reference of ``node``, with it, in the request's
    order (the dialect's ``reference_fields``): an upscale's source, else style, context.
    ``why`` names a changed reference by it; a test holds it to the body ``_request``
    builds (which names the fields itself: it is on the planning hot path)."""
    spoken = dialect(node.dialect)
    if node.source is not None:
        assert spoken.upscale_source_field is not None  # the plan refused the upscale else
        yield spoken.upscale_source_field, node.source
        return
    if node.style is not None:
        yield spoken.reference_field("style", 1), node.style
    for i, ref in enumerate(node.context, 1):
        yield spoken.reference_field("context", i), ref


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
    collections would re-scan a growing heap for nothing (a tenth of the time at 10k).

    On the way out, what planning allocated joins the oldest generation at once
    (``freeze`` then ``unfreeze``, which only moves lists): re-enabled with a million
    new objects counted, the collector's first act would be to scan them all, and
    they live as long as the plan. Skipped when the program froze objects itself, so
    those stay frozen.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _build(path: Path, doc: Document | None, overrides: Mapping[str, object],
           backend: str) -> Plan:
    if doc is None:
        doc = load_document(path)
        validate_document(doc)
    errors = ErrorList()
    warnings = WarningList()
    spoken = check_dialect(doc, errors, warnings)
    errors.raise_if_any()
    expansion = expand(doc, overrides, errors, spoken=spoken, warnings=warnings)
    assets = load_assets(doc, path.parent, errors)
    resolver = _Resolver(expansion, assets, errors, declared=set(doc.data.get("assets") or ()))
    resolved = [r for r in map(resolver.resolve, expansion.nodes) if r is not None]
    models = {r.raw.id: r.model for r in resolved if r.source is None}
    resolved = [r for r in resolved if resolver.check_upscale(r, models)]
    errors.raise_if_any()
    by_id = {r.raw.id: r for r in resolved}
    try:
        order = topological_order(list(by_id), {i: r.deps for i, r in by_id.items()})
    except Cycle as cycle:
        raise _cycle_error(cycle.nodes, by_id) from None
    nodes: dict[str, Node] = {}
    for node_id in order:
        nodes[node_id] = by_id[node_id].build(nodes, assets, backend, spoken)
    return Plan(
        recipe_path=path,
        name=expansion.name,
        backend=backend,
        nodes=MappingProxyType(nodes),
        assets=MappingProxyType(assets),
        edges=tuple((dep, n.id) for n in nodes.values() for dep in n.deps),
        accounts=expansion.accounts,
        dialect=spoken.name,
        warnings=warnings.in_order(),
    )


def _envelope(
    spoken: Dialect, kind: NodeKind, backend: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    """What a key hashes: 2025-11's ``{backend, request}``, else with dialect and endpoint."""
    if not spoken.in_keys:
        return {"backend": backend, "request": request}
    endpoint = "images/upscale" if kind == "upscale" else "images"
    return {"backend": backend, "dialect": spoken.name, "endpoint": endpoint, "request": request}


def _key(node: Node, backend: str, request: Mapping[str, Any]) -> str:
    kind: NodeKind = "upscale" if node.source is not None else "generate"
    envelope = _envelope(dialect(node.dialect), kind, backend, request)
    return hashlib.sha256(canonical_json(envelope)).hexdigest()


def _request(node: Node, text_of: Callable[[Ref], str]) -> dict[str, Any]:
    """The API's request body (less ``email`` and ``captchaRetry``), references as text.

    ``text_of`` gives a reference's text (a function, not a mapping: hashing Refs was a
    tenth of planning time).
    """
    if node.source is not None:
        return {"mediaGenerationId": text_of(node.source), "resolution": node.resolution}
    body: dict[str, Any] = {
        "prompt": node.prompt, "model": node.model, "aspectRatio": node.aspect_ratio,
        "count": node.count,
    }
    if node.seed is not None:
        body["seed"] = node.seed
    if node.style is not None:
        body[_field_name(node.dialect, "style", 1)] = text_of(node.style)
    for i, ref in enumerate(node.context, 1):
        body[_field_name(node.dialect, "context", i)] = text_of(ref)
    return body


@functools.cache
def _field_name(spoken: str, role: Literal["style", "context"], number: int) -> str:
    """``Dialect.reference_field``, remembered: every node asks for the same few names."""
    return dialect(spoken).reference_field(role, number)


def _provisional_ref(ref: Ref, nodes: Mapping[str, Node], assets: Mapping[str, Asset]) -> str:
    if ref.kind == "asset":
        assert ref.asset is not None
        return f"sha256:{assets[ref.asset].sha256}"
    assert ref.node is not None
    return f"node:{nodes[ref.node].provisional_key}#{'pick' if ref.pick else ref.index}"


class _Resolved(NamedTuple):
    """A node whose references and model are settled, waiting for its key (a tuple:
    one is made per node and read once)."""

    raw: RawNode
    model: str
    aspect_ratio: str
    fallback: str | None
    style: Ref | None
    context: tuple[Ref, ...]
    source: Ref | None
    deps: tuple[str, ...]

    def build(
        self, done: Mapping[str, Node], assets: Mapping[str, Asset], backend: str, spoken: Dialect
    ) -> Node:
        raw = self.raw
        model, ratio = self.model, self.aspect_ratio
        if self.source is not None:  # an upscale enlarges its source: same model and shape
            assert self.source.node is not None
            upstream = done[self.source.node]
            model, ratio = upstream.model, upstream.aspect_ratio
        node = Node(
            id=raw.id, step=raw.step, variant=raw.variant, out_dir=raw.out_dir,
            prompt=raw.prompt, model=model, aspect_ratio=ratio,
            count=raw.count, seed=raw.seed, style=self.style, context=self.context,
            fallback_model=self.fallback, moderation_retries=raw.moderation_retries,
            deps=self.deps, provisional_key="", location=raw.location, dialect=spoken.name,
            kind="upscale" if self.source is not None else "generate", source=self.source,
            resolution=raw.resolution, captcha_retry=raw.captcha_retry,
        )
        request = _request(node, lambda ref: _provisional_ref(ref, done, assets))
        # The key hashes the node's own request, so it is set once the node exists
        # (before anyone sees it); dataclasses.replace cost a tenth of planning time.
        object.__setattr__(node, "provisional_key", _key(node, backend, request))
        return node


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
        self.spoken = dialect(expansion.dialect)
        self.kinds = {n.step: n.upscale is not None for n in expansion.nodes}  # step -> upscale?
        self.assets = assets
        self.broken_assets = declared - set(assets)  # already reported by load_assets
        self.errors = errors
        self._reported: set[tuple[str, str]] = set()  # (step, message) already said once
        self._targets: dict[str, Target | RefProblem] = {}  # by text: `hero.0` is used often
        # A matrix step's variants share their references' places and, mostly, their
        # settings: what resolved once is looked up, not worked out again per variant.
        self._refs: dict[tuple[str, str], Ref] = {}  # the last made, by text and role
        self._settled: dict[tuple[Any, ...], tuple[str, str, str | None]] = {}

    def resolve(self, raw: RawNode) -> _Resolved | None:
        if raw.upscale is not None:
            return self._upscale(raw, raw.upscale)
        style = self._ref(raw, raw.style) if raw.style else None
        context = tuple(self._ref(raw, r) for r in raw.context)
        if (raw.style and style is None) or None in context:
            return None
        refs = tuple(r for r in context if r is not None)
        asked = (raw.model, raw.aspect_ratio, raw.fallback, style is not None, len(refs))
        settled = self._settled.get(asked)
        if settled is None:
            settled = self._settle(raw, style, refs)
            if settled is None:
                return None
            self._settled[asked] = settled
        model, ratio, fallback = settled
        deps = tuple(dict.fromkeys(r.node for r in (style, *refs) if r and r.node))
        return _Resolved(raw, model, ratio, fallback, style, refs, None, deps)

    def _settle(
        self, raw: RawNode, style: Ref | None, refs: tuple[Ref, ...]
    ) -> tuple[str, str, str | None] | None:
        """Model, aspect ratio and fallback of a node, or None after saying what is wrong:
        a function of its settings and its references' count, so variants share it."""
        spoken = self.spoken
        model = spoken.canonical_model(raw.model) if raw.model else spoken.auto_model(len(refs))
        ratio = spoken.canonical_ratio(raw.aspect_ratio)
        assert model is not None and ratio is not None  # check_dialect refused the rest
        if ratio in spoken.needs_reference and not refs:
            self._fail(raw, PlanError(
                f"step {raw.id!r}: aspectRatio {ratio!r} takes the shape of the first "
                "reference, and this step has none", raw.aspect_ratio_location or raw.location,
                hint="add a 'context:' reference or choose a ratio such as "
                     f"{spoken.default_aspect_ratio!r}",
            ))
            return None
        problem = model_problem(
            model, has_style=style is not None, context_count=len(refs), spoken=spoken
        )
        if problem:
            self._fail(raw, _model_error(raw, model, problem, style, spoken))
            return None
        fallback, problem = default_fallback(
            raw.fallback, model, has_style=style is not None, context_count=len(refs),
            spoken=spoken,
        )
        if problem:
            self._fail(raw, PlanError(f"step {raw.id!r}: {problem}", raw.location,
                                      hint="set 'fallback_model: none' or fix the step"))
            return None
        return model, ratio, fallback

    def _upscale(self, raw: RawNode, text: RawRef) -> _Resolved | None:
        """An upscale node's source: an image of an earlier step whose model can be upscaled."""
        if text.text.startswith("assets."):
            self._fail(raw, ReferenceError_(
                f"step {raw.id!r}: upscale {quote(text.text)}: only generated images can be "
                "upscaled", text.location, hint="upscale 'STEP.N', an image a step makes",
            ))
            return None
        source = self._ref(raw, text)
        if source is None:
            return None
        assert source.node is not None
        upstream = self.steps[source.node.partition("[")[0]]
        if self.kinds.get(upstream.id):
            self._fail(raw, PlanError(
                f"step {raw.id!r}: upscale {quote(text.text)}: step {upstream.id!r} is itself "
                "an upscale", text.location, hint="upscale the image it was made from",
            ))
            return None
        return _Resolved(raw, "", raw.aspect_ratio, None, None, (), source, (source.node,))

    def check_upscale(self, resolved: _Resolved, models: Mapping[str, str]) -> bool:
        """Whether the model of an upscale's source can be upscaled (known once sources are)."""
        raw, source = resolved.raw, resolved.source
        if source is None or source.node is None or source.node not in models:
            return True
        model = models[source.node]
        if self.spoken.models[model].upscalable:
            return True
        able = [m.name for m in self.spoken.models.values() if m.upscalable]
        self._fail(raw, PlanError(
            f"step {raw.id!r}: upscale {quote(source.text)}: {model} images cannot be upscaled",
            source.location,
            hint=f"upscale an image of {' or '.join(able)}" if able else "remove the step",
        ))
        return False

    def _ref(self, raw: RawNode, ref: RawRef) -> Ref | None:
        made = self._refs.get((ref.text, ref.role))
        if made is None or not (made.location is ref.location or made.location == ref.location):
            made = self._make_ref(raw, ref)
            if made is None:
                return None
            self._refs[ref.text, ref.role] = made
        if made.node == raw.id:
            self._fail(raw, ReferenceError_(
                f"step {raw.id!r}: {ref.role} {quote(ref.text)}: a node cannot use its own images",
                ref.location,
                hint="refer to an image of an earlier step",
            ))
            return None
        return made

    def _make_ref(self, raw: RawNode, ref: RawRef) -> Ref | None:
        """The Ref a reference's text resolves to, or None after saying why it does not."""
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
        role: Literal["style", "context", "source"] = (
            "source" if ref.role == "upscale" else "style" if ref.role == "style" else "context"
        )
        kind: Literal["node", "asset"] = "asset" if target.asset is not None else "node"
        return Ref(role, kind, target.node, target.index, target.asset, ref.text, ref.location,
                   target.pick)

    def _fail(self, raw: RawNode, error: PlanError | ReferenceError_) -> None:
        """Say each problem of a matrix step once, not once per variant."""
        generic = str(error).replace(raw.id, raw.step)
        if (raw.step, generic) not in self._reported:
            self._reported.add((raw.step, generic))
            self.errors.add(error)


def _model_error(
    raw: RawNode, model: str, problem: str, style: Ref | None, spoken: Dialect
) -> PlanError:
    """The model cannot take the step's references: say why and which model can."""
    takers = [m.name for m in spoken.models.values() if m.takes_style]
    if "model" in raw.per_node and raw.model_location is not None:
        # a grid: this variant's model is the problem, not the step's references
        where = raw.model_location
        hint = (f"take {raw.model} out of the grid, or remove the style reference"
                if style is not None and not spoken.models[model].takes_style
                else f"take {raw.model} out of the grid, or {reference_hint(model, spoken)}")
    elif style is not None and not spoken.models[model].takes_style and takers:
        where, hint = style.location, f"set 'model: {takers[0]}' to use a style reference"
    else:
        where = raw.model_location or (raw.context[-1].location if raw.context else raw.location)
        hint = reference_hint(model, spoken)
    chosen = "" if raw.model else f"no model is set, so the API would pick {model}, but "
    return PlanError(f"step {raw.id!r}: {chosen}{problem}", where, hint=hint)


def _cycle_error(cycle: tuple[str, ...], by_id: Mapping[str, _Resolved]) -> PlanError:
    """A cycle error at the reference that closes the loop, naming every node on it."""
    first, second = cycle[0], cycle[1]
    node = by_id[first]
    ref = next(
        (r for r in (node.source, node.style, *node.context) if r is not None and r.node == second),
        None,
    )
    where = ref.location if ref else node.raw.location
    text = f"{ref.role} {quote(ref.text)}: " if ref else ""
    return PlanError(
        f"step {first!r}: {text}references form a cycle: {' -> '.join(cycle)}", where,
        hint="an image cannot depend on itself; remove one of these references",
    )
