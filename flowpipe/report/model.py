"""The report's view of an output folder: manifest.json and run.json as display values.

The files are read by their owners (``flowpipe.store.manifest``,
``flowpipe.store.runlog``), strictly where the report cannot go on and leniently
elsewhere; this module only turns what they read into the strings the report shows.
``run.json`` is optional: without it the report shows what the manifest records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flowpipe.errors import ErrorInfo
from flowpipe.store.jsonread import scalar_text
from flowpipe.store.manifest import ManifestImage, ManifestNode, ManifestStep, read_manifest
from flowpipe.store.runlog import RunLog, read_run_log

__all__ = ["ManifestData", "NodeEntry", "RefEntry", "load_manifest", "load_run"]


@dataclass(frozen=True, slots=True)
class RefEntry:
    """A style or context reference as the recipe wrote it ("" while unknown)."""

    role: str
    text: str
    sha256: str
    path: str | None = None  # an asset's file, relative to the recipe's folder


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One request node of the plan and what became of it, ready to show."""

    id: str
    step: str
    variant: tuple[tuple[str, str], ...]
    status: str
    key: str
    deps: tuple[str, ...]
    prompt: str
    request: tuple[tuple[str, str], ...]
    references: tuple[RefEntry, ...]
    model_used: str | None
    attempts: int | None
    generation_seconds: float | None
    images: tuple[ManifestImage, ...]
    error: ErrorInfo | None


@dataclass(frozen=True, slots=True)
class ManifestData:
    """Everything ``manifest.json`` says, as the report shows it."""

    recipe_name: str
    recipe_path: str
    backend: str
    steps: tuple[ManifestStep, ...]
    nodes: tuple[NodeEntry, ...]


def _entry(node: ManifestNode) -> NodeEntry:
    return NodeEntry(
        id=node.id,
        step=node.step,
        variant=node.variant,
        status=node.status,
        key=node.key,
        deps=node.deps,
        prompt=node.prompt,
        request=tuple((str(k), scalar_text(v)) for k, v in (node.request or {}).items()),
        references=tuple(RefEntry(r.role, r.text, r.sha256 or "", r.path) for r in node.references),
        model_used=node.model_used,
        attempts=node.attempts,
        generation_seconds=node.generation_seconds,
        images=node.images,
        error=node.error,
    )


def load_manifest(out: Path) -> ManifestData:
    """Read OUT/manifest.json; anything unusable is an OutputError naming the field."""
    manifest = read_manifest(out)
    return ManifestData(
        recipe_name=manifest.recipe_name,
        recipe_path=manifest.recipe_path,
        backend=manifest.backend,
        steps=manifest.steps,
        nodes=tuple(_entry(n) for n in manifest.nodes),
    )


def load_run(out: Path) -> tuple[RunLog | None, str | None]:
    """Read OUT/run.json if there is one, or say why it is not shown."""
    return read_run_log(out)
