"""The output folder and its manifest, kept in step while a run writes images.

After any stop the manifest must describe the image files on disk (docs/outputs.md):

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
  that did not finish keeps its earlier entry while its files are its current result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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
from flowpipe.store.responses import ResponseCache, sha256_hex

__all__ = ["OutputLedger", "manifest_node"]


def manifest_node(node: Node, state: NodeState) -> ManifestNode:
    """The manifest's entry for ``node`` as ``state`` has it."""
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
        references=tuple(ManifestRef(r.role, r.text, state.ref_hashes.get(r)) for r in node.refs),
        model_used=gen.model_used if gen else None,
        attempts=gen.attempts if gen else state.attempt.sent,
        generation_seconds=gen.generation_seconds if gen else None,
        images=tuple(
            ManifestImage(i, f"{node.out_dir}/{i}.jpg", img.sha256, img.width, img.height,
                          img.seed, img.media_generation_id)
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
        self.removed = 0  # files of nodes no node lists any more, removed by finish()

    def start(self) -> None:
        """Clear what a killed run left half-written."""
        self.writer.sweep_temp_files()

    def before_writing(self, node: Node, shas: Sequence[str]) -> None:
        """Call before ``write_images`` (on the event loop): retract what would go stale."""
        old = self._previous.get(node.id)
        if self._retracted or old is None or not old.images:
            return
        new = [(f"{node.out_dir}/{i}.jpg", sha) for i, sha in enumerate(shas)]
        if [(img.path, img.sha256) for img in old.images] != new:
            write_manifest(self.out, self.manifest())
            self._retracted = True

    def write_images(self, node: Node, blobs: Sequence[bytes]) -> None:
        """Write ``node``'s images (safe off the event loop)."""
        for index, data in enumerate(blobs):
            self.writer.write_bytes(node.out_dir / f"{index}.jpg", data)

    def manifest(self, entries: Mapping[str, ManifestNode] | None = None) -> Manifest:
        """The manifest of the plan's nodes as they stand (or as ``entries`` has them)."""
        nodes = tuple(
            (entries or {}).get(nid) or manifest_node(node, self.states[nid])
            for nid, node in self.plan.nodes.items()
        )
        return Manifest(
            recipe_name=self.plan.name,
            recipe_path=self.plan.recipe_path.name,
            backend=self.plan.backend,
            steps=steps_of(nodes),
            nodes=nodes,
        )

    def finish(self, cache: ResponseCache) -> Manifest:
        """The final manifest, written, with what no entry lists any more dealt with."""
        entries = {nid: manifest_node(n, self.states[nid]) for nid, n in self.plan.nodes.items()}
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
        """Whether ``old`` stays the node's entry: its files are still its valid result."""
        state = self.states.get(old.id)
        return state is not None and state.status != "done" and old.key == state.key

    def _intact(self, image: ManifestImage) -> bytes | None:
        """The file's bytes if it still holds what the manifest says flowpipe wrote there."""
        try:
            data = self.writer.path_for(image.path).read_bytes()
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
