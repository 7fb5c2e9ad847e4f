"""Expand validated steps into nodes: matrices, defaults, rendered text, seeds.

A step with a ``matrix`` becomes one node per combination (cartesian product, the
first variable outermost), named ``STEP[k=v,...]`` with the variables in the order
written. Every node inherits ``defaults`` for what it does not set, renders its prompt
and references with its own variables, and gets a seed: an explicit integer as is,
``random`` as None, otherwise one derived from the recipe name and the node id.

Node ids keep matrix values readable (control characters escaped); output folders use
slugs of them (flowpipe.names), so no value can add a path separator, ``..``, an
absolute path, a Windows device name or a folder name too long for a file system.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from flowpipe.dialects import Dialect, dialect
from flowpipe.errors import Location, PlanError, TemplateError
from flowpipe.names import short_folder, slug
from flowpipe.recipe.dialect import value_problem
from flowpipe.recipe.fields import (
    REQUEST_FIELDS,
    UPSCALE_FIELDS,
    FieldValue,
    field_value,
    is_field_template,
)
from flowpipe.recipe.load import Document, YamlPath
from flowpipe.recipe.messages import (
    ErrorList,
    RecipeWarning,
    WarningList,
    did_you_mean,
    one_line,
    quote,
)
from flowpipe.recipe.render import Renderer
from flowpipe.recipe.rules import MAX_PROMPT_CHARS

__all__ = [
    "DEFAULT_COUNT",
    "DEFAULT_MODERATION_RETRIES",
    "MAX_NODES",
    "Expansion",
    "RawNode",
    "RawRef",
    "StepInfo",
    "derive_seed",
    "expand",
    "value_text",
]

DEFAULT_COUNT = 4
DEFAULT_MODERATION_RETRIES = 2
DEFAULT_RESOLUTION = "2k"
MAX_NODES = 100_000  # planning this many takes about 7 s and 250 MB
INHERITED = (
    "model", "aspectRatio", "count", "seed", "fallback_model", "moderation_retries",
    "captchaRetry",
)
_INHERITED_SET = frozenset(INHERITED)



@dataclass(frozen=True, slots=True)
class RawRef:
    """A reference as rendered, before it is resolved to a node or an asset."""

    role: str
    text: str
    location: Location


@dataclass(frozen=True, slots=True)
class RawNode:
    """One expanded request, before references, models and keys are resolved.

    An upscale node (``upscale`` set) has an empty prompt, count 1 and its source in
    ``upscale``; ``resolution`` is its target.
    """

    id: str
    step: str
    variant: tuple[tuple[str, str], ...]
    out_dir: str
    prompt: str
    model: str | None
    aspect_ratio: str
    count: int
    seed: int | None
    style: RawRef | None
    context: tuple[RawRef, ...]
    fallback: str | None  # "imagen-4", "nano-banana", "none", or None for the default
    moderation_retries: int
    location: Location
    model_location: Location | None
    aspect_ratio_location: Location | None = None
    upscale: RawRef | None = None
    resolution: str | None = None
    captcha_retry: int | None = None
    per_node: tuple[str, ...] = ()  # request fields a matrix value or template set here


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What references need to know about a step: its variants and image counts.

    ``count`` is the step's count; ``counts`` has each node's own where a matrix or a
    template sets ``count`` per variant.
    """

    id: str
    count: int
    matrix_keys: tuple[str, ...]
    variants: Mapping[tuple[str, ...], str]  # variant value texts -> node id
    location: Location
    counts: Mapping[str, int] = field(default_factory=dict)

    def count_of(self, node_id: str) -> int:
        """How many images node ``node_id`` of this step makes."""
        return self.counts.get(node_id, self.count)


@dataclass(frozen=True, slots=True)
class Expansion:
    """All nodes in recipe order, and the steps they came from."""

    name: str
    nodes: tuple[RawNode, ...]
    steps: Mapping[str, StepInfo]
    accounts: tuple[str, ...]
    dialect: str = "2025-11"


def value_text(value: object) -> str:
    """How a matrix value is written in node ids and selectors (``true``, ``3``, ``side``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def derive_seed(recipe_name: str, node_id: str) -> int:
    """The seed of a node without one: stable across runs, machines and other steps.

    The first four bytes of SHA-256 over the UTF-8 of ``recipe_name + "\\n" + node_id``
    (a name is one line, so the newline cannot be confused), big-endian, masked to 31
    bits (so in [0, 2**31 - 1]).
    """
    digest = hashlib.sha256(f"{recipe_name}\n{node_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def expand(
    doc: Document,
    overrides: Mapping[str, object],
    errors: ErrorList,
    *,
    spoken: Dialect | None = None,
    warnings: WarningList | None = None,
) -> Expansion:
    """Expand a schema-valid document; problems go to ``errors``.

    ``spoken`` is the recipe's dialect (default: the one its ``api:`` names); it gives
    the default aspect ratio and checks the request fields a template renders
    (an old name it still takes goes to ``warnings``).
    """
    data: dict[str, Any] = doc.data
    spoken = spoken or dialect(data.get("api"))
    name = str(data["name"])
    variables = _variables(doc, overrides, errors)
    defaults: dict[str, Any] = data.get("defaults") or {}
    renderer = Renderer()
    nodes: list[RawNode] = []
    steps: dict[str, StepInfo] = {}
    folded: dict[str, str] = {}
    warnings = warnings if warnings is not None else WarningList()
    inherited = {key: defaults.get(key) for key in INHERITED}
    _check_node_count(doc, errors)
    for step_id, spec in data["steps"].items():
        step_loc = doc.key_at(("steps", step_id))
        other = folded.setdefault(step_id.casefold(), step_id)
        if other != step_id:
            errors.add(PlanError(
                f"step {step_id!r}: differs from step {other!r} only in case; their output "
                "folders would collide on macOS and Windows", step_loc, hint="rename one",
            ))
            continue
        matrix: dict[str, list[Any]] = spec.get("matrix") or {}
        settings = inherited.copy()
        for key in _INHERITED_SET.intersection(spec):
            settings[key] = spec[key]
        step = _StepExpander(
            doc, step_id, spec=spec, settings=settings, recipe_name=name,
            variables=variables, renderer=renderer, errors=errors,
            spoken=spoken, warnings=warnings, location=step_loc,
        )
        step_nodes = step.expand(matrix)
        nodes.extend(step_nodes)
        fixed = settings["count"] if isinstance(settings["count"], int) else None
        steps[step_id] = StepInfo(
            id=step_id,
            count=1 if step.upscale else fixed or DEFAULT_COUNT,
            matrix_keys=tuple(matrix),
            variants={tuple([t for _, t in n.variant]): n.id for n in step_nodes},
            location=step_loc,
            counts={n.id: n.count for n in step_nodes} if step.varies else {},
        )
    accounts = tuple(str(a) for a in data.get("accounts") or ())
    return Expansion(
        name=name, nodes=tuple(nodes), steps=steps, accounts=accounts, dialect=spoken.name
    )


def _check_node_count(doc: Document, errors: ErrorList) -> None:
    """Refuse a recipe over MAX_NODES before any step is expanded (a count, not a build)."""
    total = 0
    for step_id, spec in doc.data["steps"].items():
        size = 1
        for values in (spec.get("matrix") or {}).values():
            size *= len(values)
        total += size
        if total > MAX_NODES:
            errors.add(PlanError(
                f"step {step_id!r}: the recipe expands to more than {MAX_NODES:,} nodes",
                doc.at(("steps", step_id, "matrix")), hint="split it into several recipes",
            ))
            errors.raise_if_any()


def _variables(
    doc: Document, overrides: Mapping[str, object], errors: ErrorList
) -> dict[str, Any]:
    declared: dict[str, Any] = dict(doc.data.get("vars") or {})
    for key, value in overrides.items():
        if key not in declared:
            errors.add(TemplateError(
                f"--var {quote(key)}: the recipe has no variable {quote(key)}"
                f"{did_you_mean(key, declared, listing=8)}",
                doc.key_at(("vars",)) if "vars" in doc.data else doc.at(()),
                hint="declare it under 'vars' first" if declared else "add a 'vars:' mapping",
            ))
            continue
        declared[key] = value
    return declared


def _out_dir(step_id: str, folder: str) -> str:
    """``STEP/FOLDER``: neither holds a ``/`` (a step id's pattern, a slug). A string, not
    a path object: a 50,000-node plan holds one per node, and a path is five times the
    memory."""
    return f"{step_id}/{folder}"


class _Field(NamedTuple):
    """A templated string of a step: where it is, what it is, its source text."""

    path: YamlPath
    role: str  # "prompt", "style", "context" or "upscale"
    source: str
    location: Location


class _StepExpander:
    """Expands one step; what is the same for every variant is worked out once."""

    def __init__(
        self,
        doc: Document,
        step_id: str,
        *,
        spec: Mapping[str, Any],
        settings: Mapping[str, Any],
        recipe_name: str,
        variables: Mapping[str, Any],
        renderer: Renderer,
        errors: ErrorList,
        spoken: Dialect,
        warnings: WarningList,
        location: Location,
    ) -> None:
        self.doc, self.step_id = doc, step_id
        self.recipe_name, self.variables = recipe_name, variables
        self.renderer, self.errors = renderer, errors
        self.spoken, self.warnings = spoken, warnings
        self.failed: set[YamlPath] = set()
        base: YamlPath = ("steps", step_id)
        matrix: Mapping[str, Any] = spec.get("matrix") or {}
        # Request fields set per node: by the matrix, or by a template of its values.
        self.per_node = {
            key: _Field(path, key, str(settings[key]), doc.at(path))
            for key in REQUEST_FIELDS
            if key not in matrix and is_field_template(settings[key])
            for path in [_setting_path(base, spec, key)]
        }
        self.from_matrix = {  # field -> value text -> where that value is written
            key: {
                value_text(v): doc.at((*base, "matrix", key, i))
                for i, v in enumerate(matrix[key])
            }
            for key in (UPSCALE_FIELDS if "upscale" in spec else REQUEST_FIELDS)
            if key in matrix
        } if matrix else {}
        self.varies = bool(self.per_node or self.from_matrix)
        self.upscale = self._field(base, "upscale", spec) if "upscale" in spec else None
        self.prompt = self._field(base, "prompt", spec)
        self.style = self._field(base, "style", spec) if "style" in spec else None
        context = spec.get("context") or ()
        self.context = tuple([
            _Field(path, "context", text, doc.at(path))
            for i, text in enumerate(context) for path in [(*base, "context", i)]
        ])
        seed = settings["seed"]
        self.seed: int | str | None = (
            None if seed == "random" else seed if seed is not None else ""
        )
        retries = settings["moderation_retries"]
        self.common = {
            "step": step_id,
            "model": settings["model"],
            "aspect_ratio": settings["aspectRatio"] or spoken.default_aspect_ratio,
            "count": 1 if self.upscale else settings["count"] or DEFAULT_COUNT,
            "fallback": settings["fallback_model"],
            "moderation_retries": DEFAULT_MODERATION_RETRIES if retries is None else retries,
            "location": location,
            "model_location": _setting_location(doc, base, spec, settings, "model"),
            "aspect_ratio_location": _setting_location(doc, base, spec, settings, "aspectRatio"),
            "resolution": spec.get("resolution", DEFAULT_RESOLUTION) if self.upscale else None,
            "captcha_retry": settings["captchaRetry"],
        }

    def _field(self, base: YamlPath, key: str, spec: Mapping[str, Any]) -> _Field:
        path = (*base, key)
        return _Field(path, key, spec.get(key, ""), self.doc.at(path))

    def expand(self, matrix: Mapping[str, list[Any]]) -> list[RawNode]:
        if not matrix:
            node = self._node(self.step_id, (), {}, _out_dir(self.step_id, "default"))
            return [node] if node is not None else []
        keys = tuple(matrix)
        if not self._distinct_texts(matrix):
            return []
        columns = [  # per variable: (value, id part, folder part, (name, text)), once
            [(v, f"{k}={one_line(t, 10**6)}", f"{k}={slug(t)}", (k, t))
             for v, t in ((v, value_text(v)) for v in values)]
            for k, values in matrix.items()
        ]
        nodes: list[RawNode] = []
        dirs: dict[str, list[int]] = {}
        seen: dict[str, tuple[Any, ...]] = {}
        step_id, make = self.step_id, self._node
        for combo in itertools.product(*columns):
            node_id = f"{step_id}[{','.join([c[1] for c in combo])}]"
            values = tuple([c[0] for c in combo])
            if node_id in seen:
                self.errors.add(PlanError(
                    f"step {self.step_id!r}: matrix values {quote(seen[node_id])} and "
                    f"{quote(values)} give the same node id {quote(node_id)}",
                    self.doc.at(("steps", self.step_id, "matrix")),
                    hint="make the values distinct as text",
                ))
                continue
            seen[node_id] = values
            folder = short_folder(",".join([c[2] for c in combo]), node_id)
            variant = tuple([c[3] for c in combo])
            scope = dict(zip(keys, values, strict=True))
            node = make(node_id, variant, scope, _out_dir(step_id, folder))
            if node is not None:
                dirs.setdefault(folder.casefold(), []).append(len(nodes))
                nodes.append(node)
        for clashing in dirs.values():
            if len(clashing) > 1:  # slugs collide: tell them apart by a hash of the id
                for i in clashing:
                    n = nodes[i]
                    tag = hashlib.sha256(n.id.encode("utf-8")).hexdigest()[:8]
                    nodes[i] = replace(n, out_dir=f"{n.out_dir}-{tag}")  # on its last part
        return nodes

    def _distinct_texts(self, matrix: Mapping[str, list[Any]]) -> bool:
        """Values must differ as text (``1`` and ``"1"`` would make one node id)."""
        for key, values in matrix.items():
            first: dict[str, Any] = {}
            for i, value in enumerate(values):
                text = value_text(value)
                if text in first:
                    self.errors.add(PlanError(
                        f"step {self.step_id!r}: matrix.{key}: {quote(first[text])} and "
                        f"{quote(value)} are the same in node ids and selectors",
                        self.doc.at(("steps", self.step_id, "matrix", key, i)),
                        hint="keep one of them",
                    ))
                    return False
                first[text] = value
        return True

    def _node(
        self,
        node_id: str,
        variant: tuple[tuple[str, str], ...],
        values: dict[str, Any],
        out_dir: str,
    ) -> RawNode | None:
        scope = {
            **self.variables,
            **values,
            "step": {"id": self.step_id, "variant": dict(variant), "node": node_id},
        }
        if self.upscale:
            return self._upscale_node(node_id, variant, values, scope, out_dir)
        fields = self._fields(node_id, values, scope) if self.varies else {}
        if fields is None:
            return None
        prompt = self._render(self.prompt, scope, node_id)
        style = self._ref(self.style, scope, node_id) if self.style else None
        context = [self._ref(f, scope, node_id) for f in self.context]
        if prompt is None or (self.style and style is None) or None in context:
            return None
        if not prompt.strip():
            self._fail(self.prompt, PlanError(
                f"step {node_id!r}: prompt renders to an empty string",
                self.prompt.location, hint="check the variables it uses",
            ))
            return None
        if len(prompt) > MAX_PROMPT_CHARS:
            self._fail(self.prompt, PlanError(
                f"step {node_id!r}: the prompt is {len(prompt):,} characters; the limit is "
                f"{MAX_PROMPT_CHARS:,}", self.prompt.location,
                hint="shorten it; see docs/recipes.md#limits",
            ))
            return None
        seed: object = self.seed
        if "seed" in fields:
            seed = fields.pop("seed")
        seed = seed if seed != "" else derive_seed(self.recipe_name, node_id)
        return RawNode(
            id=node_id,
            variant=variant,
            out_dir=out_dir,
            prompt=prompt,
            seed=seed if isinstance(seed, int) else None,
            style=style,
            context=tuple([c for c in context if c is not None]),
            **({**self.common, **fields} if fields else self.common),
        )

    def _fields(
        self, node_id: str, values: Mapping[str, Any], scope: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """This node's own request fields (RawNode names), from its matrix values and
        rendered templates; None when one is not a value the field takes."""
        found = self._matrix_fields(values)
        for key, template in self.per_node.items():
            text = self._render(template, scope, node_id)
            if text is None:
                return None
            try:
                value = field_value(key, text)
            except ValueError as exc:
                self._fail(template, PlanError(
                    f"step {node_id!r}: {key}: {quote(template.source)} renders to "
                    f"{quote(text)}, but {key} {exc}", template.location,
                    hint="check the variables it uses",
                ))
                return None
            if self._check_name(node_id, template, key, str(value)):
                return None
            found[key] = FieldValue(value, template.location)
        return _raw_fields(found)

    def _matrix_fields(self, values: Mapping[str, Any]) -> dict[str, FieldValue]:
        """The request fields this node's matrix values set (checked where written)."""
        return {
            key: FieldValue(field_value(key, values[key]), places[value_text(values[key])])
            for key, places in self.from_matrix.items()
        }

    def _check_name(self, node_id: str, template: _Field, key: str, text: str) -> bool:
        """A rendered model or aspect ratio the dialect does not take is an error (an old
        name it still takes, a warning); True when it is an error."""
        if key not in ("model", "aspectRatio"):
            return False
        problem = value_problem(self.spoken, key, text)
        if problem is not None:
            message, hint = problem
            self._fail(template, PlanError(
                f"step {node_id!r}: {key}: {quote(template.source)} renders to "
                f"{quote(text)}: {message}",
                template.location, hint=hint,
            ))  # said once per template, for the first variant that fails
            return True
        aliases = self.spoken.ratio_aliases if key == "aspectRatio" else self.spoken.aliases
        alias = aliases.get(text)
        if alias is not None:
            self.warnings.add(RecipeWarning(
                f"step {node_id!r}: {key}: {alias.warning}", template.location,
                hint=f"write '{alias.target}'",
            ))
        return False

    def _upscale_node(
        self,
        node_id: str,
        variant: tuple[tuple[str, str], ...],
        values: Mapping[str, Any],
        scope: Mapping[str, Any],
        out_dir: str,
    ) -> RawNode | None:
        """An upscale node: its source rendered, no prompt, no seed, one image; its matrix
        may set the resolution."""
        assert self.upscale is not None
        source = self._ref(self.upscale, scope, node_id)
        if source is None:
            return None
        fields = _raw_fields(self._matrix_fields(values)) if self.from_matrix else {}
        return RawNode(
            id=node_id, variant=variant, out_dir=out_dir, prompt="", seed=None, style=None,
            context=(), upscale=source, **{**self.common, **fields},
        )

    def _ref(self, field: _Field, scope: Mapping[str, Any], node_id: str) -> RawRef | None:
        text = self._render(field, scope, node_id)
        return None if text is None else RawRef(field.role, text.strip(), field.location)

    def _render(self, field: _Field, scope: Mapping[str, Any], node_id: str) -> str | None:
        if field.path in self.failed:
            return None
        try:
            return self.renderer.render(
                field.source, scope,
                what=lambda: _describe(node_id, field),
                where=lambda line: self.doc.template_location(field.path, line),
            )
        except TemplateError as exc:
            self._fail(field, exc)
            return None

    def _fail(self, field: _Field, error: TemplateError | PlanError) -> None:
        """Report a template's first failure only, not once per matrix variant."""
        self.failed.add(field.path)
        self.errors.add(error)


def _raw_fields(found: Mapping[str, FieldValue]) -> dict[str, Any]:
    """RawNode's names for request fields (``aspectRatio`` is ``aspect_ratio``), with the
    place each was set for model and aspect ratio (what rule errors point at)."""
    raw: dict[str, Any] = {}
    for key, item in found.items():
        name = "aspect_ratio" if key == "aspectRatio" else key
        raw[name] = item.value
        if key in ("model", "aspectRatio"):
            raw[f"{name}_location"] = item.location
    raw["per_node"] = tuple(found)
    return raw


def _setting_path(base: YamlPath, spec: Mapping[str, Any], key: str) -> YamlPath:
    """Where a setting was written: the step itself, else ``defaults``."""
    return (*base, key) if key in spec else ("defaults", key)


def _setting_location(
    doc: Document,
    base: YamlPath,
    spec: Mapping[str, Any],
    settings: Mapping[str, Any],
    key: str,
) -> Location | None:
    """Where an inherited setting was written: the step, ``defaults``, or nowhere."""
    if key in spec:
        return doc.at((*base, key))
    return doc.at(("defaults", key)) if settings[key] else None


def _describe(node_id: str, field: _Field) -> str:
    if field.role == "prompt":
        return f"step {node_id!r}: prompt"
    return f"step {node_id!r}: {field.role} {quote(field.source)}"
