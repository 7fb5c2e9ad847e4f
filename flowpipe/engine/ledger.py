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

A node's entry is final when the node ends: it goes to the run's ``ManifestJournal``
then (``record``), not into memory, and the manifest is written from the journal a
node at a time. So the ledger holds nothing per finished node but an offset. A cache
hit's files may still be written (in a thread) when its node ends: its entry waits in
memory for their hashes until a later ``record`` or ``finish`` finds them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from flowpipe import __version__
from flowpipe.engine.state import NodeState
from flowpipe.errors import FlowpipeError, OutputError
from flowpipe.planner import Node, Plan, node_request
from flowpipe.store.cache import MemoryCache
from flowpipe.store.manifest import (
    Manifest,
    ManifestImage,
    ManifestJournal,
    ManifestNode,
    ManifestRef,
    read_manifest,
    steps_of,
    write_manifest_stream,
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

    def __init__(self, out: Path, plan: Plan, states: Mapping[str, NodeState],
                 position: Callable[[str], int]) -> None:
        self.writer = OutputWriter(out)
        self.out = self.writer.out
        self.plan = plan
        self.states = states
        self._position = position  # a node's place in the plan
        self._previous = _listed_nodes(self.out)
        self._retracted = False
        self._files: dict[str, tuple[str, ...]] = {}  # node id -> SHA-256 of each file
        self._assets = asset_files(plan)
        self._journal = ManifestJournal(self.out, len(plan.nodes))
        self._kept: dict[str, ManifestNode] = {}  # earlier entries finish() keeps
        self._unwritten: dict[str, ManifestNode] = {}  # ended, files still being written
        self.removed = 0  # files of nodes no node lists any more, removed by finish()
        self.images = 0  # images of the entries recorded

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
            self._write()
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

    def record(self, node: Node) -> None:
        """``node`` has ended: its entry goes to the journal with its files' hashes (or
        waits for them, while a thread still writes the files)."""
        entry = self._entry(node)
        self.images += len(entry.images)
        if entry.images and node.id not in self._files:
            self._unwritten[node.id] = entry
        else:
            self._put(entry)
        self._settle()

    def _put(self, entry: ManifestNode) -> None:
        self._journal.put(self._position(entry.id), entry)
        self._files.pop(entry.id, None)

    def _settle(self, *, ended: bool = False) -> None:
        """Journal the waiting entries whose files are written (``ended``: all of them,
        nothing is being written any more)."""
        for nid in [nid for nid in self._unwritten if ended or nid in self._files]:
            entry, files = self._unwritten.pop(nid), self._files.get(nid, ())
            images = tuple(dataclasses.replace(img, file_sha256=files[i]) if i < len(files)
                           else img for i, img in enumerate(entry.images))
            self._put(dataclasses.replace(entry, images=images))

    def entries(self) -> Iterator[ManifestNode]:
        """Each node's entry as it stands, in plan order: what ``finish`` kept of an
        earlier manifest, else what the journal has, else the node's state now."""
        for nid, node in self.plan.nodes.items():
            yield (self._kept.get(nid) or self._unwritten.get(nid)
                   or self._journal.get(self._position(nid)) or self._entry(node))

    def _entry(self, node: Node) -> ManifestNode:
        return manifest_node(node, self.states[node.id], self._files.get(node.id, ()),
                             self._assets)

    def _write(self) -> None:
        """Write manifest.json of the entries as they stand, a node at a time."""
        plan = self.plan
        header = Manifest(recipe_name=plan.name, recipe_path=plan.recipe_path.name,
                          backend=plan.backend, steps=steps_of(plan.nodes.values()), nodes=())
        write_manifest_stream(self.out, header, self.entries())

    def finish(self, cache: ResponseCache) -> None:
        """Write the final manifest, with what no entry lists any more dealt with.

        Nothing is being written any more. The entries stay readable (``entries``)
        until ``close``.
        """
        self._settle(ended=True)
        if self._previous:  # else nothing can be stale: no pass over every entry
            self._retire_stale(cache)
        self._write()

    def _retire_stale(self, cache: ResponseCache) -> None:
        """Keep or remove the images of the earlier manifest that no entry lists now."""
        listed = {img.path for entry in self.entries() for img in entry.images}
        for old in self._previous.values():
            stale = [(img, data) for img in old.images if img.path not in listed
                     for data in [self._intact(img)] if data is not None]
            if not stale:
                continue
            if self._keeps(old):
                self._kept[old.id] = old
            else:
                self.removed += self._retire(stale, cache)

    def close(self) -> None:
        """The run is over: the journal goes."""
        self._journal.discard()

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
