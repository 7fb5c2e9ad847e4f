"""``run.json``: what one run did (timings, cache hits, retries, the window trace, pauses).

The one module that writes and reads the file (docs/outputs.md). Unlike the manifest
it changes on every run. Reading is lenient throughout: the report treats run.json as
a nice-to-have, so a bad one costs a note, never the contact sheet.

A run streams its records instead of keeping them (``RunJournal``): each node's record
as the node ends, and every point of the timeline, go to ``OUT/.run.jsonl`` (one JSON
array a line) while the run goes; at the end run.json is written from that file, a
record at a time, and the file is removed. So memory does not grow with the run, and
a killed run leaves its records on disk.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from flowpipe.errors import OutputError
from flowpipe.store.jsonread import opt_float, opt_int, opt_str, read_json, scalar_text
from flowpipe.store.outputs import JsonStream, OutputWriter, atomic_text, dump_streamed

__all__ = [
    "FORMAT", "JOURNAL", "RUN_LOG", "NodeRun", "PauseRun", "RunJournal", "RunLog",
    "read_run_log", "write_run_log",
]

FORMAT = 1
RUN_LOG = "run.json"
JOURNAL = ".run.jsonl"  # the records of the run going on (or of a killed one)
SERIES = ("window", "inflight", "rejections")
Series = Literal["window", "inflight", "rejections"]

Point = tuple[float, str, int]


@dataclass(frozen=True, slots=True)
class NodeRun:
    """What this run did for one node."""

    cache_hit: bool | None
    seconds: float | None
    attempts: int | None
    account: str | None
    error: str | None = None  # the error's type, when the node failed
    state: str | None = None  # cached, new or changed: why it ran (flowpipe.why)
    why: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cache_hit": self.cache_hit,
            "seconds": self.seconds,
            "attempts": self.attempts,
            "account": self.account,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.state is not None:
            data["state"] = self.state
            data["why"] = list(self.why)
        return data


@dataclass(frozen=True, slots=True)
class PauseRun:
    """A quota pause this run met (2026-07): ``account`` (or ``model`` on it) was out
    from ``at`` to ``until`` (seconds since the start), for the API's ``reason``;
    ``resumed`` is when it came back during the run (None: the run ended first)."""

    at: float
    account: str
    model: str | None
    reason: str
    until: float
    resumed: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "account": self.account, "model": self.model,
                "reason": self.reason, "until": self.until, "resumed": self.resumed}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLog:
    """Everything ``run.json`` says; timeline entries are (seconds, account, value).

    Times are seconds since ``started_at``. A rejection without a status (a timeout, a
    reset) is written with ``None`` and not read back: the chart has nothing to label.
    """

    backend_kind: str | None
    base_url: str | None
    started_at: str | None
    finished_at: str | None
    wall_seconds: float | None
    outcome: str | None
    exit_code: int | None
    summary: Mapping[str, int]
    nodes: Mapping[str, NodeRun]
    window: tuple[Point, ...]
    inflight: tuple[Point, ...]
    rejections: tuple[tuple[float, str, int | None], ...]
    pauses: tuple[PauseRun, ...] = ()
    recipe_name: str = ""
    recipe_path: str = ""
    recipe_file: str | None = None  # the recipe, relative to the output folder (POSIX)
    message: str | None = None
    remote: Mapping[str, Any] | None = None  # the remote cache's url and counts, if any
    format: int = field(default=FORMAT)

    def to_json(self) -> dict[str, Any]:
        """The file's JSON, keys in the documented order."""
        return {
            "format": self.format,
            "recipe": {"name": self.recipe_name, "path": self.recipe_path,
                       "file": self.recipe_file},
            "backend": {"kind": self.backend_kind, "base_url": self.base_url},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "wall_seconds": self.wall_seconds,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "message": self.message,
            "summary": dict(self.summary),
            "remote": dict(self.remote) if self.remote is not None else None,
            "nodes": {nid: info.to_json() for nid, info in self.nodes.items()},
            "timeline": {
                "window": [list(p) for p in self.window],
                "inflight": [list(p) for p in self.inflight],
                "rejections": [list(p) for p in self.rejections],
            },
            "pauses": [p.to_json() for p in self.pauses],
        }


def write_run_log(out: Path, log: RunLog) -> Path:
    """Write OUT/run.json atomically."""
    return OutputWriter(out).write_json(RUN_LOG, log.to_json())


class RunJournal:
    """run.json's records as a run makes them, in ``OUT/.run.jsonl`` (see the module).

    ``out=None``, or a folder that cannot be written, keeps them in memory instead: the
    error, if any, comes when run.json itself is written. Node records go in as nodes
    end, so run.json lists nodes in the order they ended.
    """

    def __init__(self, out: Path | None) -> None:
        self.path = None if out is None else Path(out) / JOURNAL
        self._file: IO[str] | None = None
        self._held: list[str] | None = None if out is not None else []
        self._on_disk = False  # this journal opened the file (an older one is not read)

    def node(self, node_id: str, run: NodeRun) -> None:
        """Record what the run did for ``node_id``, which has ended."""
        self._add(json.dumps(["node", node_id, run.to_json()], ensure_ascii=False))
        if self._file is not None:
            self._file.flush()  # on disk (the OS's) as the node ends: a kill keeps it

    def point(self, series: Series, point: tuple[float, str, int | None]) -> None:
        """One point of the timeline: (seconds, account, value)."""
        self._add(json.dumps([series, *point], ensure_ascii=False))

    def _add(self, line: str) -> None:
        if self._held is None and self._file is None:
            self._open()
        if self._file is not None:
            try:
                self._file.write(line + "\n")
                return
            except OSError:  # a full disk: what is on disk is read back, the rest kept
                self._held = []
                self._close()
        assert self._held is not None
        self._held.append(line)

    def _open(self) -> None:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8", newline="\n")
            self._on_disk = True
        except OSError:
            self._held = []

    def _close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _lines(self) -> Iterator[str]:
        """Every record so far, in the order they came."""
        if self.path is not None and self._on_disk:
            if self._file is not None:
                self._file.flush()
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.endswith("\n"):  # a line a full disk cut short is not a record
                        yield line
        yield from self._held or ()

    def _records(self, tag: str) -> Iterator[list[Any]]:
        prefix = json.dumps([tag])[:-1] + ","
        for line in self._lines():
            if line.startswith(prefix):
                yield json.loads(line)[1:]

    def write(self, log: RunLog, also: Callable[[str], object] | None = None) -> Path:
        """Write OUT/run.json: ``log`` with the journal's records after its own nodes and
        points; then remove the journal. ``also`` gets the text as it is written (so the
        run's result need not read the file back). Raises ``OutputError`` as
        ``write_run_log``."""
        assert self.path is not None, "a journal kept in memory has no folder to write to"
        target = self.path.parent / RUN_LOG
        data: dict[str, Any] = log.to_json()
        nodes = data["nodes"]
        data["nodes"] = JsonStream(itertools.chain(nodes.items(), self._records("node")),
                                   keyed=True)
        timeline = data["timeline"]
        for series in SERIES:
            timeline[series] = JsonStream(itertools.chain(timeline[series],
                                                          self._records(series)))
        with atomic_text(target) as fh:
            def write(text: str) -> None:
                fh.write(text)
                if also is not None:
                    also(text)

            dump_streamed(data, write)
            write("\n")
        self.discard()
        return target

    def nodes(self) -> dict[str, NodeRun]:
        """The node records so far (for tests and a journal kept in memory)."""
        return {str(nid): _node(info) for nid, info in self._records("node")}

    def points(self, series: Series) -> list[tuple[float, str, int | None]]:
        """The points of one series so far, in the order they came."""
        return [(float(t), str(account), value) for t, account, value in self._records(series)]

    def discard(self) -> None:
        """Forget the records: close and remove the journal."""
        self._close()
        if self.path is not None and self._on_disk:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        self._on_disk = False
        self._held = None if self.path is not None else []


def read_run_log(out: Path) -> tuple[RunLog | None, str | None]:
    """Read OUT/run.json if there is one.

    Returns the log, or None and a note saying why it is not shown.
    """
    path = out / RUN_LOG
    if not path.exists():
        return None, "run.json is missing: showing what manifest.json records."
    try:
        data = read_json(path)
    except OutputError as exc:
        return None, f"{exc}: showing what manifest.json records."
    if not isinstance(data, dict):
        return None, "run.json is not a JSON object: showing what manifest.json records."
    return _log(data), None


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timeline(raw: object) -> tuple[Point, ...]:
    """Keep the well-formed ``[seconds, account, value]`` entries, sorted by time."""
    points: list[Point] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, list) and len(item) == 3 and _number(item[0]) and _number(item[2]):
            points.append((float(item[0]), scalar_text(item[1]), int(item[2])))
    points.sort(key=lambda p: p[0])
    return tuple(points)


def _node(info: Mapping[str, Any]) -> NodeRun:
    hit = info.get("cache_hit")
    why = info.get("why")
    return NodeRun(
        cache_hit=hit if isinstance(hit, bool) else None,
        seconds=opt_float(info, "seconds"),
        attempts=opt_int(info, "attempts"),
        account=opt_str(info, "account"),
        error=opt_str(info, "error"),
        state=opt_str(info, "state"),
        why=tuple(scalar_text(w) for w in why) if isinstance(why, list) else (),
    )


def _pauses(raw: object) -> tuple[PauseRun, ...]:
    """Keep the pauses that say who, why and when; the rest is dropped."""
    pauses = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        at, until = opt_float(item, "at"), opt_float(item, "until")
        account, reason = opt_str(item, "account"), opt_str(item, "reason")
        if at is None or until is None or not account or not reason:
            continue
        pauses.append(PauseRun(at, account, opt_str(item, "model"), reason, until,
                               opt_float(item, "resumed")))
    return tuple(sorted(pauses, key=lambda p: p.at))


def _log(data: Mapping[str, Any]) -> RunLog:
    backend, recipe, timeline = (_object(data, k) for k in ("backend", "recipe", "timeline"))
    summary = {str(k): int(v) for k, v in _object(data, "summary").items() if _number(v)}
    nodes = {str(k): _node(v) for k, v in _object(data, "nodes").items() if isinstance(v, dict)}
    return RunLog(
        backend_kind=opt_str(backend, "kind"),
        base_url=opt_str(backend, "base_url"),
        started_at=opt_str(data, "started_at"),
        finished_at=opt_str(data, "finished_at"),
        wall_seconds=opt_float(data, "wall_seconds"),
        outcome=opt_str(data, "outcome"),
        exit_code=opt_int(data, "exit_code"),
        summary=summary,
        nodes=nodes,
        window=_timeline(timeline.get("window")),
        inflight=_timeline(timeline.get("inflight")),
        rejections=_timeline(timeline.get("rejections")),
        pauses=_pauses(data.get("pauses")),
        recipe_name=opt_str(recipe, "name") or "",
        recipe_path=opt_str(recipe, "path") or "",
        recipe_file=opt_str(recipe, "file"),
        message=opt_str(data, "message"),
        remote=dict(_object(data, "remote")) or None,
        format=opt_int(data, "format") or FORMAT,
    )
