"""What the contact sheet needs for a reviewer: picks, reference thumbnails, filters.

The static report shows the picks of ``RECIPE.picks.yaml`` read-only (with the file's
text to copy); ``flowpipe review`` serves the same page with picking turned on. The
recipe is found through ``run.json`` (its path relative to the output folder), so a
report of a folder without one simply has no picks. Every string here stays raw:
escaping is the template's and ``safe_json``'s job.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from flowpipe.errors import PicksError
from flowpipe.report.model import ManifestData, NodeEntry
from flowpipe.report.thumbs import Thumb, safe_image_path
from flowpipe.store.picks import Picks, dump_picks, picks_path, read_picks
from flowpipe.store.runlog import RunLog

__all__ = [
    "PicksView",
    "RefThumb",
    "asset_sources",
    "choices",
    "image_hrefs",
    "load_picks",
    "node_facts",
    "picks_json",
    "picks_yaml",
    "recipe_of",
    "ref_thumbs",
]


@dataclass(frozen=True, slots=True)
class RefThumb:
    """A reference of a step as the page shows it: a thumbnail of the image it meant."""

    role: str
    text: str
    sha: str  # the first 12 hex digits, "" while unknown
    thumb: Thumb | None
    href: str | None  # the full image, when it is in the output folder


@dataclass(frozen=True, slots=True)
class PicksView:
    """The picks file as the page shows it (or why there is none to show)."""

    path: Path | None
    picks: Picks | None
    note: str | None

    @property
    def name(self) -> str:
        return self.path.name if self.path else ""


def recipe_of(out: Path, run: RunLog | None) -> Path | None:
    """The recipe file that made ``out``, from run.json, if it is still there."""
    if run is None or not run.recipe_file:
        return None
    path = Path(run.recipe_file)
    path = Path(os.path.normpath(path if path.is_absolute() else out / path))
    return path if path.is_file() else None


def load_picks(recipe: Path | None) -> PicksView:
    """The recipe's picks; a broken file is a note on the page, never a failed report."""
    if recipe is None:
        return PicksView(None, None, "no picks: run.json does not say where the recipe is")
    path = picks_path(recipe)
    try:
        return PicksView(path, read_picks(path), None)
    except PicksError as exc:
        return PicksView(path, None, f"{path.name} cannot be read: {exc}")


def picks_json(picks: Picks | None) -> dict[str, object]:
    """Picks by node, as the page's script reads them."""
    if picks is None:
        return {}
    return {
        node: {"image": p.image, "sha256": p.sha256, "note": p.note,
               "rejected": {str(i): sha for i, sha in p.rejected.items()}}
        for node, p in picks.entries.items()
    }


def picks_yaml(picks: Picks | None, manifest: ManifestData) -> str:
    """The picks file's text, as ``flowpipe review`` would write it."""
    if picks is None or not picks.entries:
        return ""
    return dump_picks(picks, (n.id for n in manifest.nodes))


def asset_sources(manifest: ManifestData, recipe: Path | None) -> list[tuple[str, Path]]:
    """(sha256, file) of each asset a node used whose file still has those bytes."""
    if recipe is None:
        return []
    found: dict[str, Path] = {}
    for node in manifest.nodes:
        for ref in node.references:
            rel = safe_image_path(ref.path) if ref.path else None
            if rel is None or not ref.sha256 or ref.sha256 in found:
                continue
            source = recipe.parent / rel
            try:
                digest = hashlib.sha256(source.read_bytes()).hexdigest()
            except OSError:
                continue
            if digest == ref.sha256:
                found[ref.sha256] = source
    return list(found.items())


def ref_thumbs(
    members: Iterable[NodeEntry],
    thumbs: Mapping[str, Thumb | None],
    hrefs: Mapping[str, str],
) -> tuple[RefThumb, ...]:
    """The references of a step's nodes, each once, with the thumbnail of their bytes."""
    seen: dict[tuple[str, str, str], RefThumb] = {}
    for node in members:
        for ref in node.references:
            key = (ref.role, ref.text, ref.sha256)
            if key not in seen:
                seen[key] = RefThumb(ref.role, ref.text, ref.sha256[:12],
                                     thumbs.get(ref.sha256), hrefs.get(ref.sha256))
    return tuple(seen.values())


def image_hrefs(manifest: ManifestData, out: Path) -> dict[str, str]:
    """Each image's API hash -> its file's link, for references to upstream images."""
    hrefs: dict[str, str] = {}
    for node in manifest.nodes:
        for image in node.images:
            rel = safe_image_path(image.path)
            if rel is not None and (out / rel).is_file():
                hrefs.setdefault(image.sha256, quote(rel.as_posix(), safe="/=,"))
    return hrefs


def node_facts(manifest: ManifestData) -> dict[str, dict[str, str]]:
    """Per node what the filters and the search read: prompt, model, ratio, status."""
    facts = {}
    for node in manifest.nodes:
        request = dict(node.request)
        facts[node.id] = {
            "prompt": node.prompt,
            "model": node.model_used or request.get("model", ""),
            "ratio": request.get("aspectRatio", ""),
            "status": node.status,
        }
    return facts


def choices(facts: Mapping[str, Mapping[str, str]], field: str) -> tuple[str, ...]:
    """The values a filter offers, in first-seen order."""
    return tuple(dict.fromkeys(f[field] for f in facts.values() if f[field]))
