"""Layout of the step graph as boxes and curves for an inline SVG.

Steps go left to right by depth (a step sits one column after its deepest
dependency), in recipe order within a column. Small recipes are what people keep in
git, so this simple layered layout reads well; wide ones scroll sideways.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["DagBox", "DagEdge", "DagLayout", "DagStep", "layout_dag"]

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 168, 46, 64, 14, 8
_MAX_LABEL = 20


@dataclass(frozen=True, slots=True)
class DagStep:
    """What the graph needs to know of a step."""

    id: str
    anchor: str
    state: str
    detail: str
    deps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DagBox:
    """A step's box: position, label (shortened) and full name for its tooltip."""

    step: DagStep
    x: int
    y: int
    label: str


@dataclass(frozen=True, slots=True)
class DagEdge:
    """A curve from a dependency to the step that uses it."""

    path: str
    source: str
    target: str


@dataclass(frozen=True, slots=True)
class DagLayout:
    """Boxes, edges and the SVG size."""

    width: int
    height: int
    box_width: int
    box_height: int
    boxes: tuple[DagBox, ...]
    edges: tuple[DagEdge, ...]


def _depths(steps: Sequence[DagStep]) -> Mapping[str, int]:
    """Longest path from a source; a cycle (never planned) is cut, not looped on."""
    by_id = {s.id: s for s in steps}
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(step_id: str) -> int:
        if step_id in depth:
            return depth[step_id]
        if step_id in visiting or step_id not in by_id:
            return -1
        visiting.add(step_id)
        d = 1 + max((visit(dep) for dep in by_id[step_id].deps), default=-1)
        visiting.discard(step_id)
        depth[step_id] = d
        return d

    for s in steps:
        visit(s.id)
    return depth


def layout_dag(steps: Sequence[DagStep]) -> DagLayout:
    """Place each step in its depth column; draw each dependency as a curve."""
    depth = _depths(steps)
    columns: dict[int, list[DagStep]] = {}
    for s in steps:
        columns.setdefault(depth[s.id], []).append(s)
    boxes: dict[str, DagBox] = {}
    for col, members in sorted(columns.items()):
        for row, s in enumerate(members):
            label = s.id if len(s.id) <= _MAX_LABEL else s.id[: _MAX_LABEL - 1] + "…"
            boxes[s.id] = DagBox(
                step=s, x=PAD + col * (BOX_W + GAP_X), y=PAD + row * (BOX_H + GAP_Y), label=label
            )
    edges = []
    for s in steps:
        for dep in s.deps:
            if dep not in boxes or dep == s.id:
                continue
            a, b = boxes[dep], boxes[s.id]
            x1, y1 = a.x + BOX_W, a.y + BOX_H / 2
            x2, y2 = b.x, b.y + BOX_H / 2
            if x2 <= x1:  # same column (only with a cut cycle): loop over the top
                path = f"M{x1} {y1}C{x1 + 40} {y1 - 60} {x2 - 40} {y2 - 60} {x2} {y2}"
            else:
                mid = (x1 + x2) / 2
                path = f"M{x1} {y1:g}C{mid:g} {y1:g} {mid:g} {y2:g} {x2 - 6} {y2:g}"
            edges.append(DagEdge(path=path, source=dep, target=s.id))
    n_cols = max(columns, default=0) + 1
    n_rows = max((len(m) for m in columns.values()), default=1)
    return DagLayout(
        width=2 * PAD + n_cols * BOX_W + (n_cols - 1) * GAP_X,
        height=2 * PAD + n_rows * BOX_H + (n_rows - 1) * GAP_Y,
        box_width=BOX_W,
        box_height=BOX_H,
        boxes=tuple(boxes.values()),
        edges=tuple(edges),
    )
