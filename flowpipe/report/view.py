"""Turn the manifest and run data into exactly what the template draws.

All decisions (which status a card filters under, which parameters are common to a
step, how a matrix becomes a table, what to suggest for a failure) are made here in
plain Python, so the template stays a loop and 2,000 cards render in milliseconds.
Strings stay raw here: escaping is the template's job (autoescape) and the JSON
embedding's (``render.safe_json``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flowpipe.dialects import request_references
from flowpipe.errors import ErrorInfo
from flowpipe.report.model import ManifestData, NodeEntry
from flowpipe.report.thumbs import Thumb, image_sha, safe_image_path
from flowpipe.store.manifest import ManifestImage, ManifestStep
from flowpipe.store.runlog import RunLog

__all__ = [
    "Card", "Failure", "MatrixTable", "NodeGroup", "StepView", "UpscaleSource", "build_steps",
]

_DEFAULT_HINTS = {
    "failed": "Fix the cause above, then run again: finished nodes come from the cache.",
    "skipped": "Fix the upstream node that failed, then run again; this node follows it.",
    "waiting": "Pick images with `flowpipe review OUT`, then run again.",
}
_SKIP_PARAMS = {"prompt", "email"}


@dataclass(frozen=True, slots=True)
class Card:
    """One image: thumbnail, link to the full file and how it was made."""

    i: int
    node_id: str
    index: int
    status: str
    href: str | None
    thumb: Thumb | None
    aspect: str
    seed: int | None
    model_used: str | None
    model_changed: bool
    cache_hit: bool | None
    seconds: float | None
    media_generation_id: str | None
    size: str
    sha256: str = ""  # of the image as the API made it: what a pick records


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a node made no images, and what to try."""

    status: str
    error: ErrorInfo
    hint: str


@dataclass(frozen=True, slots=True)
class NodeGroup:
    """A node's cards (or its failure) with what differs from its step.

    ``change`` and ``why`` say why the run made it (``new``/``changed`` and what
    changed since the lock) or that the cache answered it (run.json; None: unknown).
    """

    node: NodeEntry
    label: str
    status: str
    cards: tuple[Card, ...]
    failure: Failure | None
    prompt: str | None
    params: tuple[tuple[str, str], ...]
    cache_hit: bool | None
    account: str | None
    change: str | None = None
    why: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MatrixTable:
    """Two matrix variables as rows and columns of node groups (or one, as rows).

    A matrix of three or more variables is laid out as one table per combination of
    the others, each with its ``caption`` (``mood=dusk``).
    """

    row_var: str
    col_var: str | None
    col_labels: tuple[str, ...]
    rows: tuple[tuple[str, tuple[NodeGroup | None, ...]], ...]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class UpscaleSource:
    """What an upscale step enlarged: the reference as written, its step's anchor, the size."""

    text: str
    anchor: str | None
    resolution: str


@dataclass(frozen=True, slots=True)
class StepView:
    """A step section: shared prompt and parameters, then its nodes."""

    index: int
    id: str
    anchor: str
    state: str
    counts: tuple[tuple[str, int], ...]
    prompt: str | None
    params: tuple[tuple[str, str], ...]
    references: tuple[tuple[str, str, str], ...]
    matrix_vars: tuple[str, ...]
    groups: tuple[NodeGroup, ...]
    table: MatrixTable | None
    deps: tuple[str, ...]
    source: UpscaleSource | None = None
    more_tables: tuple[MatrixTable, ...] = ()  # the other combinations of 3+ variables


def _upscale_source(members: Sequence[NodeEntry], step_of: Mapping[str, str],
                    anchors: Mapping[str, str]) -> UpscaleSource | None:
    """The source of an upscale step (a node with a ``source`` reference), else None."""
    for node in members:
        for ref in node.references:
            if ref.role == "source":
                upstream = next((step_of[d] for d in node.deps if d in step_of), None)
                resolution = dict(node.request).get("resolution", "")
                return UpscaleSource(ref.text, anchors.get(upstream or ""), resolution)
    return None


def _card_status(node: NodeEntry, hit: bool | None) -> str:
    return "cached" if node.status == "done" and hit else node.status


def _cards(
    node: NodeEntry,
    start: int,
    hit: bool | None,
    out: Path,
    thumbs: Mapping[str, Thumb | None],
) -> list[Card]:
    requested = dict(node.request).get("model")
    cards = []
    for offset, image in enumerate(node.images):
        rel = safe_image_path(image.path)
        present = rel is not None and (out / rel).is_file()
        thumb = thumbs.get(image_sha(image.sha256, out / rel)) if rel and present else None
        width, height = image.width, image.height
        if not (width and height) and thumb is not None:
            width, height = thumb.width, thumb.height
        cards.append(
            Card(
                i=start + offset,
                node_id=node.id,
                index=image.index,
                status=_card_status(node, hit),
                href=quote(rel.as_posix(), safe="/=,") if rel and present else None,
                thumb=thumb,
                aspect=f"{width} / {height}" if width and height else "16 / 9",
                seed=image.seed,
                model_used=node.model_used,
                model_changed=bool(requested and node.model_used and requested != node.model_used),
                cache_hit=hit,
                seconds=node.generation_seconds,
                media_generation_id=image.media_generation_id,
                size=f"{width}×{height}" if width and height else "",
                sha256=image.sha256,
            )
        )
    return cards


def _step_status(groups: Sequence[NodeGroup]) -> str:
    statuses = {g.status for g in groups}
    for state in ("failed", "skipped", "waiting"):
        if state in statuses:
            return state
    if statuses == {"cached"}:
        return "cached"
    return "done" if statuses <= {"done", "cached"} else "pending"


def _common(items: Sequence[tuple[tuple[str, str], ...]]) -> dict[str, str]:
    if not items:
        return {}
    common = dict(items[0])
    for item in items[1:]:
        other = dict(item)
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def _tables(step: ManifestStep, groups: Sequence[NodeGroup]) -> tuple[MatrixTable, ...]:
    """The step's matrix as tables: rows by its first variable, columns by its second,
    one table per combination of any others (in the recipe's order throughout)."""
    if not groups:
        return ()
    names = [k for k, _ in step.matrix] or [k for k, _ in groups[0].node.variant]
    if not names or any({k for k, _ in g.node.variant} != set(names) for g in groups):
        return ()
    axes: list[list[str]] = [[] for _ in names]
    cells: dict[tuple[str, ...], NodeGroup] = {}
    for g in groups:
        values = dict(g.node.variant)
        key = tuple(values[n] for n in names)
        for axis, value in zip(axes, key, strict=True):
            if value not in axis:
                axis.append(value)
        cells[key] = g
    if len(names) == 1:
        single = tuple((v, (cells.get((v,)),)) for v in axes[0])
        return (MatrixTable(row_var=names[0], col_var=None, col_labels=(), rows=single),)
    tables = []
    for rest in itertools.product(*axes[2:]):
        rows = tuple((r, tuple(cells.get((r, c, *rest)) for c in axes[1])) for r in axes[0])
        if not any(g for _, row in rows for g in row):
            continue
        caption = ", ".join(f"{k}={v}" for k, v in zip(names[2:], rest, strict=True))
        tables.append(MatrixTable(row_var=names[0], col_var=names[1],
                                  col_labels=tuple(axes[1]), rows=rows, caption=caption))
    return tuple(tables)


def build_steps(
    manifest: ManifestData,
    run: RunLog | None,
    out: Path,
    thumbs: Mapping[str, Thumb | None],
) -> tuple[tuple[StepView, ...], list[dict[str, object]]]:
    """Step sections in recipe order, and the lightbox's list of images."""
    nodes = {n.id: n for n in manifest.nodes}
    step_of = {n.id: n.step for n in manifest.nodes}
    anchors = {step.id: f"step-{i}" for i, step in enumerate(manifest.steps)}
    lightbox: list[dict[str, object]] = []
    steps: list[StepView] = []
    for s_index, step in enumerate(manifest.steps):
        members = [nodes[n] for n in step.node_ids if n in nodes]
        members += [n for n in manifest.nodes if n.step == step.id and n.id not in step.node_ids]
        prompts = {n.prompt for n in members}
        params_common = _common([_params(n) for n in members])
        groups = []
        for node in members:
            info = run.nodes.get(node.id) if run else None
            hit = info.cache_hit if info else None
            cards = _cards(node, len(lightbox), hit, out, thumbs)
            for card in cards:
                lightbox.append(_lightbox_item(card, node))
            failure = None
            if node.status in ("failed", "skipped", "waiting") or node.error is not None:
                error = node.error or ErrorInfo("Error", "no reason recorded")
                hint = error.hint or _DEFAULT_HINTS.get(node.status, _DEFAULT_HINTS["failed"])
                failure = Failure(status=node.status, error=error, hint=hint)
            groups.append(
                NodeGroup(
                    node=node,
                    label=", ".join(f"{k}={v}" for k, v in node.variant) or node.id,
                    status=_card_status(node, hit),
                    cards=tuple(cards),
                    failure=failure,
                    prompt=node.prompt if len(prompts) > 1 else None,
                    params=tuple((k, v) for k, v in _params(node) if k not in params_common),
                    cache_hit=hit,
                    account=info.account if info else None,
                    change=info.state if info else None,
                    why=info.why if info else (),
                )
            )
        counts: dict[str, int] = {}
        for g in groups:
            counts[g.status] = counts.get(g.status, 0) + 1
        refs = dict.fromkeys((r.role, r.text, r.sha256[:12]) for n in members for r in n.references)
        tables = _tables(step, groups) if any(n.variant for n in members) else ()
        steps.append(
            StepView(
                index=s_index,
                id=step.id,
                anchor=f"step-{s_index}",
                state=_step_status(groups),
                counts=tuple(sorted(counts.items())),
                prompt=next(iter(prompts)) if len(prompts) == 1 else None,
                params=tuple(params_common.items()),
                references=tuple(refs),
                matrix_vars=tuple(k for k, _ in step.matrix)
                or (tuple(k for k, _ in members[0].variant) if members else ()),
                groups=tuple(groups),
                table=tables[0] if tables else None,
                more_tables=tables[1:],
                deps=tuple(
                    dict.fromkeys(
                        step_of[d]
                        for n in members
                        for d in n.deps
                        if d in step_of and step_of[d] != step.id
                    )
                ),
                source=_upscale_source(members, step_of, anchors),
            )
        )
    return tuple(steps), lightbox


def _params(node: NodeEntry) -> tuple[tuple[str, str], ...]:
    """Request fields worth showing: references are listed apart, by their text."""
    refs = set(request_references(k for k, _ in node.request))
    return tuple((k, v) for k, v in node.request if k not in _SKIP_PARAMS and k not in refs)


def _lightbox_item(card: Card, node: NodeEntry) -> dict[str, object]:
    return {
        "src": card.href,
        "title": f"{node.id} · #{card.index}",
        "prompt": node.prompt,
        "seed": card.seed,
        "model": card.model_used,
        "mgid": card.media_generation_id,
        "size": card.size,
        "status": card.status,
        "node": node.id,
        "index": card.index,
        "sha": card.sha256,
    }


def image_entries(manifest: ManifestData, out: Path) -> list[tuple[str, Path, ManifestImage]]:
    """Every image of the manifest with a safe path: (sha256, file, entry)."""
    entries = []
    for node in manifest.nodes:
        for image in node.images:
            rel = safe_image_path(image.path)
            if rel is not None:
                source = out / rel
                entries.append((image_sha(image.sha256, source), source, image))
    return entries
