"""``manifest.json``: what an output folder holds, node by node (docs/outputs.md).

The one module that writes and reads the file. Writing is exact and stable: nothing
in a manifest says when the run happened or whether the cache answered (run.json
does), so a cached re-run writes the same bytes. Reading is strict where nothing can
go on (a JSON object listing nodes) and lenient elsewhere, because a folder may come
from another version or a crash: a missing field reads as unknown, never as a guess.
"""

from __future__ import annotations

import contextlib
import json
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from flowpipe.errors import ErrorInfo, OutputError
from flowpipe.store.jsonread import (
    opt_float,
    opt_int,
    opt_str,
    read_json,
    scalar_text,
    want_list,
    want_object,
)
from flowpipe.store.outputs import JsonStream, OutputWriter, atomic_text, dump_streamed

__all__ = [
    "FORMAT",
    "JOURNAL",
    "MANIFEST",
    "Manifest",
    "ManifestImage",
    "ManifestJournal",
    "ManifestNode",
    "ManifestRef",
    "ManifestStep",
    "read_manifest",
    "steps_of",
    "write_manifest",
    "write_manifest_stream",
]

FORMAT = 1
MANIFEST = "manifest.json"
JOURNAL = ".manifest.jsonl"  # the entries of the nodes that ended, while a run goes
_WHERE = "manifest.json"


@dataclass(frozen=True, slots=True)
class ManifestImage:
    """One image file a node made.

    ``sha256`` is the hash of the image as the API made it (what the cache, the lock,
    keys and picks use); ``file_sha256`` that of the file, which adds flowpipe's
    provenance packet (what ``sha256sum`` prints; None when not recorded).
    """

    index: int
    path: str  # relative to the output folder, POSIX separators
    sha256: str
    width: int | None
    height: int | None
    seed: int | None
    media_generation_id: str | None
    file_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """A style or context reference as the recipe wrote it, and the bytes it meant."""

    role: str
    text: str
    sha256: str | None  # None while the referenced image does not exist
    path: str | None = None  # an asset's file, relative to the recipe's folder (POSIX)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestNode:
    """One request node of the plan and what became of it."""

    id: str
    step: str
    variant: tuple[tuple[str, str], ...]
    status: str  # done, failed, skipped (or pending while a run writes the folder)
    key: str
    deps: tuple[str, ...]
    prompt: str
    request: Mapping[str, Any] | None  # the request body the key is made of
    references: tuple[ManifestRef, ...]
    model_used: str | None
    attempts: int | None
    generation_seconds: float | None
    images: tuple[ManifestImage, ...]
    error: ErrorInfo | None


@dataclass(frozen=True, slots=True)
class ManifestStep:
    """A recipe step: its matrix (variable -> values in order) and its nodes."""

    id: str
    matrix: tuple[tuple[str, tuple[str, ...]], ...]
    node_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Everything ``manifest.json`` says."""

    recipe_name: str
    recipe_path: str
    backend: str
    steps: tuple[ManifestStep, ...]
    nodes: tuple[ManifestNode, ...]

    def to_json(self) -> dict[str, Any]:
        """The file's JSON, keys in the documented order."""
        return {
            "format": FORMAT,
            "recipe": {"name": self.recipe_name, "path": self.recipe_path},
            "backend": self.backend,
            "steps": [
                {"id": s.id, "matrix": {k: list(v) for k, v in s.matrix}, "nodes": list(s.node_ids)}
                for s in self.steps
            ],
            "nodes": [_node_json(n) for n in self.nodes],
        }


class _Member(Protocol):
    """What a step's list needs of a node (a ``ManifestNode`` or a plan's ``Node``)."""

    @property
    def id(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def variant(self) -> tuple[tuple[str, str], ...]: ...


def steps_of(nodes: Iterable[_Member]) -> tuple[ManifestStep, ...]:
    """Steps in order of first appearance, each matrix value once, in order."""
    matrices: dict[str, dict[str, dict[str, None]]] = {}  # dicts as ordered sets
    members: dict[str, list[str]] = {}
    for node in nodes:
        matrix = matrices.setdefault(node.step, {})
        members.setdefault(node.step, []).append(node.id)
        for name, value in node.variant:
            matrix.setdefault(name, {})[value] = None
    return tuple(
        ManifestStep(step, tuple((k, tuple(v)) for k, v in matrix.items()), tuple(members[step]))
        for step, matrix in matrices.items()
    )


def write_manifest(out: Path, manifest: Manifest) -> Path:
    """Write OUT/manifest.json atomically (unchanged bytes are not rewritten)."""
    return OutputWriter(out).write_json(MANIFEST, manifest.to_json())


def write_manifest_stream(out: Path, header: Manifest, nodes: Iterable[ManifestNode]) -> Path:
    """Write OUT/manifest.json as ``write_manifest`` does, ``header`` with ``nodes`` (an
    iterable, made as it is written) in place of its own: for a long run's manifest,
    which is never whole in memory."""
    data = header.to_json()
    data["nodes"] = JsonStream(_node_json(node) for node in nodes)
    target = OutputWriter(out).path_for(MANIFEST)
    with atomic_text(target, keep_same=True) as fh:
        dump_streamed(data, fh.write)
        fh.write("\n")
    return target


class ManifestJournal:
    """The entries of the nodes of a run that have ended, in ``OUT/.manifest.jsonl``.

    A run writes each node's entry here as the node ends instead of keeping it, and
    reads it back by the node's position when it writes manifest.json, in plan order.
    Only an offset per node is held (a number for each of ``size`` positions). A folder
    that cannot be written keeps the entries in memory instead.
    """

    def __init__(self, out: Path, size: int) -> None:
        self.path = Path(out) / JOURNAL
        self._offsets = array("q", [-1]) * size
        self._file: IO[bytes] | None = None
        self._held: dict[int, ManifestNode] | None = None  # when the file cannot be used

    def put(self, position: int, node: ManifestNode) -> None:
        """Keep ``node``'s entry (it has ended) for ``position`` in the plan."""
        if self._held is None and self._file is None:
            self._open()
        if self._held is None and self._file is not None:
            line = json.dumps(_node_json(node), ensure_ascii=False, separators=(",", ":"))
            try:
                self._file.seek(0, 2)
                self._offsets[position] = self._file.tell()
                self._file.write(line.encode("utf-8") + b"\n")
                self._file.flush()  # on disk (the OS's) as the node ends: a kill keeps it
                return
            except OSError:  # a full disk: what is written stays readable, the rest held
                self._offsets[position] = -1
                self._held = {}
        assert self._held is not None
        self._held[position] = node

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w+b")
        except OSError:
            self._held = {}

    def get(self, position: int) -> ManifestNode | None:
        """The entry kept for ``position``; None if none was."""
        offset = self._offsets[position]
        if offset < 0 or self._file is None:
            return (self._held or {}).get(position)  # held in memory, or none
        self._file.seek(offset)
        line = self._file.readline()
        return _read_node(json.loads(line), f"{JOURNAL}@{offset}")

    def discard(self) -> None:
        """Close and remove the journal; nothing is kept any more."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        self._offsets = array("q", [-1]) * len(self._offsets)
        self._held = None

    def __iter__(self) -> Iterator[ManifestNode]:
        """Every entry kept, in position order."""
        for position in range(len(self._offsets)):
            node = self.get(position)
            if node is not None:
                yield node


def read_manifest(out: Path) -> Manifest:
    """Read OUT/manifest.json; anything unusable is an OutputError naming the field."""
    data = want_object(read_json(out / MANIFEST), "top level", _WHERE)
    if "nodes" not in data:
        raise OutputError("manifest.json: no 'nodes' list; is this a flowpipe output folder?")
    listed = want_list(data["nodes"], "nodes", _WHERE)
    nodes = tuple(_read_node(n, f"nodes[{i}]") for i, n in enumerate(listed))
    recipe = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
    assert isinstance(recipe, dict)
    backend = data.get("backend")
    if isinstance(backend, dict):
        backend = backend.get("kind")
    return Manifest(
        recipe_name=opt_str(recipe, "name") or "",
        recipe_path=opt_str(recipe, "path") or "",
        backend="" if backend is None else scalar_text(backend),
        steps=_read_steps(data.get("steps"), nodes),
        nodes=nodes,
    )


# -- writing -----------------------------------------------------------------------------


def _node_json(node: ManifestNode) -> dict[str, Any]:
    return {
        "id": node.id,
        "step": node.step,
        "variant": dict(node.variant),
        "status": node.status,
        "key": node.key,
        "deps": list(node.deps),
        "prompt": node.prompt,
        "request": None if node.request is None else dict(node.request),
        "references": [_ref_json(r) for r in node.references],
        "model_used": node.model_used,
        "attempts": node.attempts,
        "generation_seconds": node.generation_seconds,
        "images": [
            {
                "index": i.index,
                "path": i.path,
                "sha256": i.sha256,
                "file_sha256": i.file_sha256,
                "width": i.width,
                "height": i.height,
                "seed": i.seed,
                "media_generation_id": i.media_generation_id,
            }
            for i in node.images
        ],
        "error": node.error.as_dict() if node.error else None,
    }


def _ref_json(ref: ManifestRef) -> dict[str, Any]:
    data: dict[str, Any] = {"role": ref.role, "text": ref.text, "sha256": ref.sha256}
    if ref.path is not None:
        data["path"] = ref.path
    return data


# -- reading -----------------------------------------------------------------------------


def _read_image(raw: object, where: str, position: int) -> ManifestImage:
    obj = want_object(raw, where, _WHERE)
    path = obj.get("path")
    if not isinstance(path, str) or not path:
        raise OutputError(f"manifest.json: {where}.path: expected a relative file path")
    index = opt_int(obj, "index")
    return ManifestImage(
        index=position if index is None else index,
        path=path,
        sha256=opt_str(obj, "sha256") or "",
        width=opt_int(obj, "width"),
        height=opt_int(obj, "height"),
        seed=opt_int(obj, "seed"),
        media_generation_id=opt_str(obj, "media_generation_id"),
        file_sha256=opt_str(obj, "file_sha256"),
    )


def _read_error(raw: object) -> ErrorInfo | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return ErrorInfo("Error", scalar_text(raw))
    return ErrorInfo(
        type=opt_str(raw, "type") or "Error",
        message=opt_str(raw, "message") or "",
        status=opt_int(raw, "status"),
        reason=opt_str(raw, "reason"),
        hint=opt_str(raw, "hint"),
    )


def _read_refs(raw: object, where: str) -> tuple[ManifestRef, ...]:
    refs = []
    for i, ref in enumerate(want_list(raw, where, _WHERE)):
        obj = want_object(ref, f"{where}[{i}]", _WHERE)
        refs.append(ManifestRef(opt_str(obj, "role") or "", opt_str(obj, "text") or "",
                                opt_str(obj, "sha256"), opt_str(obj, "path")))
    return tuple(refs)


def _read_node(raw: object, where: str) -> ManifestNode:
    obj = want_object(raw, where, _WHERE)
    node_id = obj.get("id")
    if not isinstance(node_id, str) or not node_id:
        raise OutputError(f"manifest.json: {where}.id: expected a node id")
    variant = want_object(obj.get("variant") or {}, f"{where}.variant", _WHERE)
    request = obj.get("request")
    images = want_list(obj.get("images"), f"{where}.images", _WHERE)
    return ManifestNode(
        id=node_id,
        step=opt_str(obj, "step") or node_id.split("[", 1)[0],
        variant=tuple((str(k), scalar_text(v)) for k, v in variant.items()),
        status=opt_str(obj, "status") or "done",
        key=opt_str(obj, "key") or "",
        deps=tuple(str(d) for d in want_list(obj.get("deps"), f"{where}.deps", _WHERE)),
        prompt=opt_str(obj, "prompt") or "",
        request=None if request is None else want_object(request, f"{where}.request", _WHERE),
        references=_read_refs(obj.get("references"), f"{where}.references"),
        model_used=opt_str(obj, "model_used"),
        attempts=opt_int(obj, "attempts"),
        generation_seconds=opt_float(obj, "generation_seconds"),
        images=tuple(_read_image(img, f"{where}.images[{i}]", i) for i, img in enumerate(images)),
        error=_read_error(obj.get("error")),
    )


def _read_steps(raw: object, nodes: tuple[ManifestNode, ...]) -> tuple[ManifestStep, ...]:
    """Steps as the manifest lists them; any step only the nodes name is added after."""
    steps: list[ManifestStep] = []
    for i, item in enumerate(want_list(raw, "steps", _WHERE)):
        obj = want_object(item, f"steps[{i}]", _WHERE)
        step_id = obj.get("id")
        if not isinstance(step_id, str):
            raise OutputError(f"manifest.json: steps[{i}].id: expected a step id")
        matrix = want_object(obj.get("matrix") or {}, f"steps[{i}].matrix", _WHERE)
        where = f"steps[{i}].matrix"
        steps.append(
            ManifestStep(
                id=step_id,
                matrix=tuple(
                    (str(k), tuple(scalar_text(v) for v in want_list(vals, where, _WHERE)))
                    for k, vals in matrix.items()
                ),
                node_ids=tuple(str(n) for n in want_list(obj.get("nodes"), f"steps[{i}].nodes",
                                                         _WHERE)),
            )
        )
    known = {s.id for s in steps}
    extra: dict[str, list[str]] = {}
    for node in nodes:
        if node.step not in known:
            extra.setdefault(node.step, []).append(node.id)
    steps.extend(ManifestStep(id=s, matrix=(), node_ids=tuple(ids)) for s, ids in extra.items())
    return tuple(steps)
