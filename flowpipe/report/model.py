"""Read ``manifest.json`` and ``run.json`` into typed values for the report.

The report is written from files a run left behind, maybe by another version or
after a crash, so reading is strict where the report cannot go on (the manifest must
be a JSON object listing nodes) and lenient elsewhere: a missing optional field is
shown as unknown, never guessed. ``run.json`` is optional: without it the report shows
what the manifest records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowpipe.errors import OutputError

__all__ = [
    "ImageEntry",
    "ManifestData",
    "NodeEntry",
    "NodeErrorInfo",
    "NodeRunInfo",
    "RefEntry",
    "RunData",
    "StepEntry",
    "load_manifest",
    "load_run",
]


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One image file a node made, as the manifest lists it."""

    index: int
    path: str
    sha256: str
    width: int | None
    height: int | None
    seed: int | None
    media_generation_id: str | None


@dataclass(frozen=True, slots=True)
class RefEntry:
    """A style or context reference as the recipe wrote it."""

    role: str
    text: str
    sha256: str


@dataclass(frozen=True, slots=True)
class NodeErrorInfo:
    """Why a node failed or was skipped, and what to try."""

    type: str
    status: int | None
    reason: str | None
    message: str
    hint: str | None


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One request node of the plan and what became of it."""

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
    images: tuple[ImageEntry, ...]
    error: NodeErrorInfo | None


@dataclass(frozen=True, slots=True)
class StepEntry:
    """A recipe step: its matrix (variable -> values) and its nodes in order."""

    id: str
    matrix: tuple[tuple[str, tuple[str, ...]], ...]
    node_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ManifestData:
    """Everything ``manifest.json`` says."""

    recipe_name: str
    recipe_path: str
    backend: str
    steps: tuple[StepEntry, ...]
    nodes: tuple[NodeEntry, ...]


@dataclass(frozen=True, slots=True)
class NodeRunInfo:
    """What this run did for one node."""

    cache_hit: bool | None
    seconds: float | None
    attempts: int | None
    account: str | None


@dataclass(frozen=True, slots=True)
class RunData:
    """Everything ``run.json`` says; timeline entries are (seconds, account, value)."""

    backend_kind: str | None
    base_url: str | None
    started_at: str | None
    finished_at: str | None
    wall_seconds: float | None
    outcome: str | None
    exit_code: int | None
    summary: Mapping[str, int]
    nodes: Mapping[str, NodeRunInfo]
    window: tuple[tuple[float, str, int], ...]
    inflight: tuple[tuple[float, str, int], ...]
    rejections: tuple[tuple[float, str, int], ...]


def _scalar_text(value: object) -> str:
    """Show a JSON scalar the way a recipe author wrote it (true, not True)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else _scalar_text(value)


def _opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_float(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _obj(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise OutputError(f"manifest.json: {where}: expected an object")
    return value


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OutputError(f"manifest.json: {where}: expected a list")
    return value


def _read_json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputError(f"{path}: not found; run `flowpipe run` to make it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"{path}: cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None


def _image(raw: object, where: str, position: int) -> ImageEntry:
    obj = _obj(raw, where)
    path = obj.get("path")
    if not isinstance(path, str) or not path:
        raise OutputError(f"manifest.json: {where}.path: expected a relative file path")
    index = _opt_int(obj, "index")
    return ImageEntry(
        index=position if index is None else index,
        path=path,
        sha256=_opt_str(obj, "sha256") or "",
        width=_opt_int(obj, "width"),
        height=_opt_int(obj, "height"),
        seed=_opt_int(obj, "seed"),
        media_generation_id=_opt_str(obj, "media_generation_id"),
    )


def _error(raw: object) -> NodeErrorInfo | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return NodeErrorInfo("Error", None, None, _scalar_text(raw), None)
    return NodeErrorInfo(
        type=_opt_str(raw, "type") or "Error",
        status=_opt_int(raw, "status"),
        reason=_opt_str(raw, "reason"),
        message=_opt_str(raw, "message") or "",
        hint=_opt_str(raw, "hint"),
    )


def _node(raw: object, where: str) -> NodeEntry:
    obj = _obj(raw, where)
    node_id = obj.get("id")
    if not isinstance(node_id, str) or not node_id:
        raise OutputError(f"manifest.json: {where}.id: expected a node id")
    variant = obj.get("variant") or {}
    request = obj.get("request") or {}
    refs = []
    for i, ref in enumerate(_list(obj.get("references"), f"{where}.references")):
        ref_obj = _obj(ref, f"{where}.references[{i}]")
        refs.append(
            RefEntry(
                role=_opt_str(ref_obj, "role") or "",
                text=_opt_str(ref_obj, "text") or "",
                sha256=_opt_str(ref_obj, "sha256") or "",
            )
        )
    images = tuple(
        _image(img, f"{where}.images[{i}]", i)
        for i, img in enumerate(_list(obj.get("images"), f"{where}.images"))
    )
    return NodeEntry(
        id=node_id,
        step=_opt_str(obj, "step") or node_id.split("[", 1)[0],
        variant=tuple(
            (str(k), _scalar_text(v)) for k, v in _obj(variant, f"{where}.variant").items()
        ),
        status=_opt_str(obj, "status") or "done",
        key=_opt_str(obj, "key") or "",
        deps=tuple(str(d) for d in _list(obj.get("deps"), f"{where}.deps")),
        prompt=_opt_str(obj, "prompt") or "",
        request=tuple(
            (str(k), _scalar_text(v)) for k, v in _obj(request, f"{where}.request").items()
        ),
        references=tuple(refs),
        model_used=_opt_str(obj, "model_used"),
        attempts=_opt_int(obj, "attempts"),
        generation_seconds=_opt_float(obj, "generation_seconds"),
        images=images,
        error=_error(obj.get("error")),
    )


def _steps(raw: object, nodes: tuple[NodeEntry, ...]) -> tuple[StepEntry, ...]:
    """Steps as the manifest lists them; any step only the nodes name is added after."""
    steps: list[StepEntry] = []
    for i, item in enumerate(_list(raw, "steps")):
        obj = _obj(item, f"steps[{i}]")
        step_id = obj.get("id")
        if not isinstance(step_id, str):
            raise OutputError(f"manifest.json: steps[{i}].id: expected a step id")
        matrix = _obj(obj.get("matrix") or {}, f"steps[{i}].matrix")
        steps.append(
            StepEntry(
                id=step_id,
                matrix=tuple(
                    (str(k), tuple(_scalar_text(v) for v in _list(vals, f"steps[{i}].matrix")))
                    for k, vals in matrix.items()
                ),
                node_ids=tuple(str(n) for n in _list(obj.get("nodes"), f"steps[{i}].nodes")),
            )
        )
    known = {s.id for s in steps}
    extra: dict[str, list[str]] = {}
    for node in nodes:
        if node.step not in known:
            extra.setdefault(node.step, []).append(node.id)
    steps.extend(StepEntry(id=s, matrix=(), node_ids=tuple(ids)) for s, ids in extra.items())
    return tuple(steps)


def load_manifest(out: Path) -> ManifestData:
    """Read OUT/manifest.json; anything unusable is an OutputError naming the field."""
    data = _obj(_read_json(out / "manifest.json"), "top level")
    if "nodes" not in data:
        raise OutputError("manifest.json: no 'nodes' list; is this a flowpipe output folder?")
    nodes = tuple(_node(n, f"nodes[{i}]") for i, n in enumerate(_list(data.get("nodes"), "nodes")))
    recipe = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
    assert isinstance(recipe, dict)
    backend = data.get("backend")
    if isinstance(backend, dict):
        backend = backend.get("kind")
    return ManifestData(
        recipe_name=_opt_str(recipe, "name") or "",
        recipe_path=_opt_str(recipe, "path") or "",
        backend="" if backend is None else _scalar_text(backend),
        steps=_steps(data.get("steps"), nodes),
        nodes=nodes,
    )


def _timeline(raw: object) -> tuple[tuple[float, str, int], ...]:
    """Keep the well-formed ``[seconds, account, value]`` entries, sorted by time."""
    points: list[tuple[float, str, int]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, list) or len(item) != 3:
            continue
        t, account, value = item
        if (
            isinstance(t, int | float)
            and not isinstance(t, bool)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            points.append((float(t), _scalar_text(account), int(value)))
    points.sort(key=lambda p: p[0])
    return tuple(points)


def load_run(out: Path) -> tuple[RunData | None, str | None]:
    """Read OUT/run.json if there is one.

    Returns the data, or None and a note saying why it is not shown: the run file is
    a nice-to-have, so a bad one must not cost the user the contact sheet.
    """
    path = out / "run.json"
    if not path.exists():
        return None, "run.json is missing: showing what manifest.json records."
    try:
        data = _read_json(path)
    except OutputError as exc:
        return None, f"{exc}: showing what manifest.json records."
    if not isinstance(data, dict):
        return None, "run.json is not a JSON object: showing what manifest.json records."
    backend = data.get("backend") if isinstance(data.get("backend"), dict) else {}
    assert isinstance(backend, dict)
    summary_raw = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    assert isinstance(summary_raw, dict)
    summary = {
        str(k): int(v)
        for k, v in summary_raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    nodes: dict[str, NodeRunInfo] = {}
    nodes_raw = data.get("nodes") if isinstance(data.get("nodes"), dict) else {}
    assert isinstance(nodes_raw, dict)
    for node_id, info in nodes_raw.items():
        if isinstance(info, dict):
            hit = info.get("cache_hit")
            nodes[str(node_id)] = NodeRunInfo(
                cache_hit=hit if isinstance(hit, bool) else None,
                seconds=_opt_float(info, "seconds"),
                attempts=_opt_int(info, "attempts"),
                account=_opt_str(info, "account"),
            )
    timeline = data.get("timeline") if isinstance(data.get("timeline"), dict) else {}
    assert isinstance(timeline, dict)
    run = RunData(
        backend_kind=_opt_str(backend, "kind"),
        base_url=_opt_str(backend, "base_url"),
        started_at=_opt_str(data, "started_at"),
        finished_at=_opt_str(data, "finished_at"),
        wall_seconds=_opt_float(data, "wall_seconds"),
        outcome=_opt_str(data, "outcome"),
        exit_code=_opt_int(data, "exit_code"),
        summary=summary,
        nodes=nodes,
        window=_timeline(timeline.get("window")),
        inflight=_timeline(timeline.get("inflight")),
        rejections=_timeline(timeline.get("rejections")),
    )
    return run, None
