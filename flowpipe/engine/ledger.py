"""The output folder and its manifest, kept in step while a run writes images.

After any stop the manifest must describe the image files on disk (docs/outputs.md):

- images are ``N.jpg`` or ``N.png``, named by what the bytes are (2026-07 may send PNG);
- a run starts by removing the temp files a killed writer left (``.0.jpg.XXXX.tmp``);
- before the first file that the folder's manifest lists is overwritten with other
  bytes, the manifest is rewritten with only what this run has finished so far (the
  rest read ``pending``), so a kill never leaves it naming bytes that are not there;
- the final manifest lists every node as it ended, and the folder holds exactly the
  images it lists: files an earlier manifest listed that nothing lists now (a node no
  longer in the recipe, a node made again with other images) are removed, with the
  folders they leave empty. Their bytes go into the cache first when it lacks them, so
  the only copy is never lost. Only files a manifest lists with the SHA-256 they still
  have are touched: a file flowpipe did not write, or one edited since, stays. A node
  that did not finish keeps its earlier entry while its files are its current result
  (same key, or no key this run: skipped below a node that failed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from flowpipe import __version__
from flowpipe.engine.state import NodeState
from flowpipe.errors import FlowpipeError, OutputError
from flowpipe.planner import Node, Plan, node_request
from flowpipe.store.cache import MemoryCache
from flowpipe.store.manifest import (
    Manifest,
    ManifestImage,
    ManifestNode,
    ManifestRef,
    read_manifest,
    steps_of,
    write_manifest,
)
from flowpipe.store.outputs import OutputWriter
from flowpipe.store.provenance import Provenance, embed, strip
from flowpipe.store.responses import CachedGeneration, CachedImage, ResponseCache, sha256_hex

__all__ = ["OutputLedger", "asset_files", "image_path", "manifest_node"]


def image_path(node: Node, index: int, image: CachedImage) -> str:
    """Where image ``index`` of ``node`` goes, relative to the output folder."""
    return f"{node.out_dir}/{index}.{image.extension}"


def asset_files(plan: Plan) -> dict[str, str]:
    """Each asset's file relative to the recipe's folder (POSIX), for the manifest."""
    folder = plan.recipe_path.parent.resolve()
    files = {}
    for name, asset in plan.assets.items():
        with contextlib.suppress(ValueError):
            files[name] = asset.path.resolve().relative_to(folder).as_posix()
    return files


def manifest_node(
    node: Node, state: NodeState, files: Sequence[str | None] = (),
    assets: Mapping[str, str] | None = None,
) -> ManifestNode:
    """The manifest's entry for ``node`` as ``state`` has it (``files``: file hashes,
    ``assets``: asset files by name, from ``asset_files``)."""
    complete = len(state.ref_hashes) == len(node.refs)
    gen = state.generation
    images = () if gen is None else gen.images
    return ManifestNode(
        id=node.id,
        step=node.step,
        variant=node.variant,
        status=state.status if state.finished else "pending",
        key=state.key or node.provisional_key,
        deps=tuple(dict.fromkeys(node.deps)),
        prompt=node.prompt,
        request=node_request(node, state.ref_hashes) if complete else None,
        references=tuple(
            ManifestRef(r.role, r.text, state.ref_hashes.get(r),
                        (assets or {}).get(r.asset) if r.asset is not None else None)
            for r in node.refs
        ),
        model_used=gen.model_used if gen else None,
        attempts=gen.attempts if gen else state.attempt.sent,
        generation_seconds=gen.generation_seconds if gen else None,
        images=tuple(
            ManifestImage(i, image_path(node, i, img), img.sha256, img.width, img.height,
                          img.seed, img.media_generation_id or None,
                          files[i] if i < len(files) else None)
            for i, img in enumerate(images)
        ),
        error=state.error,
    )


class OutputLedger:
    """Writes one run's images and keeps ``manifest.json`` true to them."""

    def __init__(self, out: Path, plan: Plan, states: Mapping[str, NodeState]) -> None:
        self.writer = OutputWriter(out)
        self.out = self.writer.out
        self.plan = plan
        self.states = states
        self._previous = _listed_nodes(self.out)
        self._retracted = False
        self._files: dict[str, tuple[str, ...]] = {}  # node id -> SHA-256 of each file
        self._assets = asset_files(plan)
        self.removed = 0  # files of nodes no node lists any more, removed by finish()

    def start(self) -> None:
        """Clear what a killed run left half-written."""
        self.writer.sweep_temp_files()

    def before_writing(self, node: Node, images: Sequence[CachedImage]) -> None:
        """Call before ``write_images`` (on the event loop): retract what would go stale."""
        old = self._previous.get(node.id)
        if self._retracted or old is None or not old.images:
            return
        new = [(image_path(node, i, img), img.sha256) for i, img in enumerate(images)]
        if [(img.path, img.sha256) for img in old.images] != new:
            write_manifest(self.out, self.manifest())
            self._retracted = True

    def write_images(self, node: Node, gen: CachedGeneration, blobs: Sequence[bytes]) -> None:
        """Write ``node``'s images, each with its provenance packet (safe off the loop).

        The files are the API's bytes plus an XMP packet that depends on nothing but the
        request, its answer and the flowpipe version, so a cached re-run writes the same
        bytes.
        """
        files = []
        for index, (image, data) in enumerate(zip(gen.images, blobs, strict=True)):
            stamped = embed(data, self.provenance(node, gen, index))
            self.writer.write_bytes(image_path(node, index, image), stamped)
            files.append(sha256_hex(stamped))
        self._files[node.id] = tuple(files)

    def provenance(self, node: Node, gen: CachedGeneration, index: int) -> Provenance:
        """What the packet of image ``index`` of ``node`` says."""
        image = gen.images[index]
        return Provenance(
            recipe=self.plan.name, node=node.id, image=index, prompt=node.prompt,
            model=gen.model_used, seed=image.seed, aspect_ratio=node.aspect_ratio,
            request_key=self.states[node.id].key or node.provisional_key,
            image_sha256=image.sha256, flowpipe_version=__version__, backend=self.plan.backend,
        )

    def manifest(self, entries: Mapping[str, ManifestNode] | None = None) -> Manifest:
        """The manifest of the plan's nodes as they stand (or as ``entries`` has them)."""
        nodes = tuple(
            (entries or {}).get(nid) or self._entry(node)
            for nid, node in self.plan.nodes.items()
        )
        return Manifest(
            recipe_name=self.plan.name,
            recipe_path=self.plan.recipe_path.name,
            backend=self.plan.backend,
            steps=steps_of(nodes),
            nodes=nodes,
        )

    def _entry(self, node: Node) -> ManifestNode:
        return manifest_node(node, self.states[node.id], self._files.get(node.id, ()),
                             self._assets)

    def finish(self, cache: ResponseCache) -> Manifest:
        """The final manifest, written, with what no entry lists any more dealt with."""
        entries = {nid: self._entry(n) for nid, n in self.plan.nodes.items()}
        listed = {img.path for entry in entries.values() for img in entry.images}
        for old in self._previous.values():
            stale = [(img, data) for img in old.images if img.path not in listed
                     for data in [self._intact(img)] if data is not None]
            if not stale:
                continue
            if self._keeps(old):
                entries[old.id] = old
            else:
                self.removed += self._retire(stale, cache)
        manifest = self.manifest(entries)
        write_manifest(self.out, manifest)
        return manifest

    def _keeps(self, old: ManifestNode) -> bool:
        """Whether ``old`` stays the node's entry: its files are still its valid result.

        So it is when the node did not finish and nothing replaced them: its key is the
        same, or it has none (skipped below a node that failed: its references are the
        bytes it was made from).
        """
        state = self.states.get(old.id)
        return state is not None and state.status != "done" \
            and state.key in (None, old.key)

    def _intact(self, image: ManifestImage) -> bytes | None:
        """The API's bytes of the file (its provenance packet taken off) if they are still
        what the manifest says flowpipe wrote there."""
        try:
            data = strip(self.writer.path_for(image.path).read_bytes())  # the API's bytes
        except (OSError, OutputError):
            return None
        return data if sha256_hex(data) == image.sha256 else None

    def _retire(self, images: Sequence[tuple[ManifestImage, bytes]],
                cache: ResponseCache) -> int:
        """Remove files no node lists (their bytes kept in the cache); how many went."""
        removed = 0
        keeps = not isinstance(cache.store, MemoryCache)  # a run without a cache folder
        for image, data in images:
            if not keeps and cache.get_image(image.sha256) is None:
                continue  # the only copy, and nowhere to keep it: the file stays
            try:
                cache.put_image(data, sha=image.sha256)
                path = self.writer.path_for(image.path)
                path.unlink()
            except (OSError, FlowpipeError):  # not kept elsewhere: the file stays
                continue
            removed += 1
            self._prune(path.parent)
        return removed

    def _prune(self, folder: Path) -> None:
        """Remove ``folder`` and its parents while they are empty, up to the output folder."""
        root = self.writer.root
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): stop climbing
                return
            folder = folder.parent


def _listed_nodes(out: Path) -> dict[str, ManifestNode]:
    """What the folder's manifest lists, by node id; nothing if there is none to read."""
    try:
        return {node.id: node for node in read_manifest(out).nodes}
    except OutputError:
        return {}
