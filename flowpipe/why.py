"""Why a node runs: ``cached``, ``new`` or ``changed``, and what changed, in short strings.

The one place that compares what a run is about to ask for with what was accepted
last time: the lock (``RECIPE.lock.json``: each node's key, images and, since issue 13,
the canonical request its key hashes), with requests an older lock does not record
filled in from the output folder's manifest where its key is the locked one. A node is

- ``cached`` when the cache answers it (nothing is sent);
- ``changed`` when it will be sent and the baseline has it with another request (or it
  is refreshed, or the backend or API version differs): ``why`` names each field that
  changed, with the prompt's text difference, each reference whose bytes changed
  (an upstream image, through which reference; an asset file, by path and hash);
- ``new`` when it will be sent and the baseline has no such node (or has the same
  request, but the cache lost it).

``flowpipe plan`` asks ``explain_plan`` (a walk of the cache that writes nothing),
``flowpipe run`` asks ``Explainer.explain`` for each node it sends, once its upstream
images exist, and ``flowpipe why`` prints ``chain``. Reasons name no CLI flags.

``ref_sha`` is the one answer to "which bytes does this reference mean now, before a
run": an asset's, an upstream image the cache holds, or the image a reviewer picked
(``STEP.pick``, from ``RECIPE.picks.yaml``); ``flowpipe diff`` resolves a recipe's
side with it too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from flowpipe.errors import FrozenCacheMissError, OutputError
from flowpipe.planner import (
    Node,
    Plan,
    Ref,
    check_steps,
    node_request,
    request_key,
    request_refs,
)
from flowpipe.recipe.messages import one_line
from flowpipe.store.lock import Lock, LockEntry, lock_place, read_lock
from flowpipe.store.manifest import read_manifest
from flowpipe.store.outputs import default_out_dir
from flowpipe.store.picks import Picks, picks_path, read_picks
from flowpipe.store.responses import ResponseCache, existing_cache

__all__ = [
    "STATES",
    "Baseline",
    "Explainer",
    "State",
    "Verdict",
    "chain",
    "explain_plan",
    "headline",
    "known_hashes",
    "load_baseline",
    "plan_picks",
    "ref_sha",
    "text_change",
    "verdicts",
]

State = Literal["cached", "new", "changed"]
STATES: tuple[State, ...] = ("cached", "new", "changed")
_SHOWN_CHANGES = 2  # prompt differences shown before "(+N more)"
_SPAN = 60  # characters of one changed span
_CONTEXT = 1  # words shown around a change


@dataclass(frozen=True, slots=True)
class Verdict:
    """A node's state and the reasons for it (short strings, most telling first)."""

    state: State
    why: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        """``changed: prompt`` in one short phrase, for a progress line."""
        return headline(self.state, self.why)


def headline(state: str, why: Sequence[str]) -> str:
    """A state and the first reason in a few words: ``changed: prompt`` (a field names
    itself), ``changed: upstream image changed: context hero.0``, ``new: not in the
    cache``; ``(+N more)`` when there are more reasons."""
    if not why:
        return state
    name, colon, _ = why[0].partition(":")
    subject = name if colon and " " not in name else why[0].split(" (", 1)[0]
    more = f" (+{len(why) - 1} more)" if len(why) > 1 else ""
    return f"{state}: {subject}{more}"


@dataclass(frozen=True, slots=True)
class Baseline:
    """What was accepted last time: per node its key, images and (when known) request.

    ``source`` names where it comes from (a lock file, or a manifest) for messages;
    ``backend`` and ``api`` are the kind of keys it holds (None: not recorded).
    """

    source: str
    backend: str | None
    api: str | None
    nodes: Mapping[str, LockEntry]


def load_baseline(locks: Sequence[Path], out: Path | None) -> Baseline | None:
    """The first lock of ``locks`` that exists, with requests an older lock does not
    record taken from ``out``'s manifest where the key matches; else that manifest."""
    listed = _manifest_entries(out)
    for path in locks:
        if not path.exists():
            continue
        try:
            lock = read_lock(path)
        except FrozenCacheMissError:
            continue
        return _with_requests(lock, path.name, listed)
    if not listed:
        return None
    assert out is not None
    return Baseline(f"{out.as_posix()}/manifest.json", None, None, MappingProxyType(listed))


def _manifest_entries(out: Path | None) -> dict[str, LockEntry]:
    """The done nodes an output folder's manifest lists, as lock entries."""
    if out is None or not (out / "manifest.json").exists():
        return {}
    try:
        manifest = read_manifest(out)
    except OutputError:
        return {}
    return {
        n.id: LockEntry(n.key, tuple(i.sha256 for i in n.images), n.request)
        for n in manifest.nodes
        if n.status == "done" and n.key
    }


def _with_requests(lock: Lock, source: str, listed: Mapping[str, LockEntry]) -> Baseline:
    nodes = dict(lock.nodes)
    for nid, entry in lock.nodes.items():
        other = listed.get(nid)
        if entry.request is None and other is not None and other.key == entry.key:
            nodes[nid] = LockEntry(entry.key, entry.images, other.request)
    return Baseline(source, lock.backend, lock.api, MappingProxyType(nodes))


class Explainer:
    """Gives each node of one plan its Verdict against one baseline."""

    def __init__(
        self,
        plan: Plan,
        baseline: Baseline | None,
        *,
        refreshing: Callable[[str], bool] = lambda step: False,
        picks: Picks | None = None,
    ) -> None:
        self.plan = plan
        self.baseline = baseline
        self.refreshing = refreshing
        self.picks = picks
        self._folder = plan.recipe_path.parent

    def explain(
        self,
        node: Node,
        request: Mapping[str, Any],
        *,
        key: str | None,
        cached: bool,
        upstream: Mapping[str, Verdict] | None = None,
    ) -> Verdict:
        """The verdict for ``node`` whose request is ``request`` and whose real key is
        ``key``; ``cached``: the cache answers it. Before a run an image not made yet
        stands in the request as ``node:KEY#N`` and ``key`` is None: ``upstream`` (the
        verdicts so far) then says whether that image changes or is only not made yet.
        """
        entry = self.baseline.nodes.get(node.id) if self.baseline else None
        same = entry is not None and key is not None and key == entry.key
        changes: list[str] = []
        waits: list[str] = []
        if entry is not None and not same:
            changes, waits = self._changes(node, entry, request, upstream or {})
        if cached:
            return Verdict("cached", tuple(changes))
        if self.refreshing(node.step):
            return Verdict("changed", ("refresh asked", *changes, *waits))
        if entry is None:
            return Verdict("new", (self._unknown(),))
        if same:
            return Verdict("new", (f"not in the cache ({self._source()} has this very "
                                   "request)",))
        if changes:
            return Verdict("changed", (*changes, *waits))
        if waits:
            return Verdict("new", tuple(waits))
        return Verdict("changed", (f"key differs from {self._source()} (it records no "
                                   "request to compare)",))

    def _unknown(self) -> str:
        if self.baseline is None:
            return "not in the cache"
        return f"not in {self._source()}"

    def _source(self) -> str:
        return self.baseline.source if self.baseline else "the lock"

    def _changes(
        self,
        node: Node,
        entry: LockEntry,
        request: Mapping[str, Any],
        upstream: Mapping[str, Verdict],
    ) -> tuple[list[str], list[str]]:
        """What differs from the baseline's entry, and which upstream images are only not
        made yet (their nodes are new: nothing says this one changed)."""
        assert self.baseline is not None
        changes, waits = [], []
        base = self.baseline
        if base.backend is not None and base.backend != self.plan.backend:
            changes.append(f"backend: {base.backend} → {self.plan.backend}")
        if base.api is not None and base.api != node.dialect:
            changes.append(f"api: {base.api} → {node.dialect}")
        refs = dict(request_refs(node))
        pending = {name for name, value in request.items()
                   if name in refs and isinstance(value, str) and value.startswith("node:")}
        for name in sorted(pending):
            ref = refs[name]
            what = upstream.get(ref.node or "")
            if what is not None and what.state == "changed":
                changes.append(f"upstream image is made again: {_named(ref)} "
                               f"({ref.node} changed)")
            elif ref.pick and what is not None and what.state == "cached":
                waits.append(self._review(ref))
            else:
                state = what.state if what is not None else "not made"
                waits.append(f"upstream image not made yet: {_named(ref)} "
                             f"({ref.node} is {state})")
        if entry.request is not None:
            changes += self._fields(node, entry.request, request, skip=pending)
        return changes, waits

    def _review(self, ref: Ref) -> str:
        """Why a ``STEP.pick`` of a node the cache holds is not known: no pick, or a stale one."""
        pick = self.picks.get(ref.node or "") if self.picks is not None else None
        if pick is None or pick.image is None:
            return f"waits for review: no image of {ref.node} is picked yet ({_named(ref)})"
        return (f"waits for review: the pick of {ref.node} is stale: image {pick.image} is not "
                f"what {ref.node} made now ({_named(ref)})")

    def _fields(
        self, node: Node, before: Mapping[str, Any], after: Mapping[str, Any],
        *, skip: Set[str] = frozenset(),
    ) -> list[str]:
        refs = dict(request_refs(node))
        changes = []
        for name in _ordered(before, after):
            old, new = before.get(name), after.get(name)
            if old == new or name in skip:
                continue
            if name == "prompt":
                changes.append(f"prompt: {text_change(str(old or ''), str(new or ''))}")
            elif name in refs or _is_reference(old) or _is_reference(new):
                changes.append(self._reference(name, refs.get(name), old, new))
            else:
                changes.append(f"{one_line(name, 40)}: {_shown(name, old)} → {_shown(name, new)}")
        return changes

    def _reference(self, name: str, ref: Ref | None, old: object, new: object) -> str:
        """One reference field that differs: which image, through which reference."""
        if ref is None:
            return f"{one_line(name, 40)} removed ({_short(old)})"
        what = _named(ref)
        if old is None:
            return f"{what} added"
        if ref.kind == "asset":
            assert ref.asset is not None
            asset = self.plan.assets[ref.asset]
            path = one_line(_relative(asset.path, self._folder), 120)
            return f"asset file changed: {path} ({_short(old)} → {asset.sha256[:12]})"
        return f"upstream image changed: {what} ({_short(old)} → {_short(new)})"


def explain_plan(
    plan: Plan,
    cache: ResponseCache | None,
    baseline: Baseline | None,
    *,
    refreshing: Callable[[str], bool] = lambda step: False,
    picks: Picks | None = None,
) -> dict[str, Verdict]:
    """Every node's verdict before a run, from the cache and ``picks`` alone: nothing is
    written.

    A node is cached when its upstream images are (so its real key is known) and the
    cache holds that key; otherwise it would be sent, and its request is compared with
    images not made yet standing as ``node:KEY#N`` (``node:KEY#pick``: no valid pick).
    """
    explainer = Explainer(plan, baseline, refreshing=refreshing, picks=picks)
    images: dict[str, tuple[str, ...]] = {}  # node -> image hashes the cache holds
    verdicts: dict[str, Verdict] = {}
    for nid, node in plan.nodes.items():
        hashes = known_hashes(plan, node, images, picks)
        if hashes is None:
            request = plan.provisional_request(nid)
            verdicts[nid] = explainer.explain(node, request, key=None, cached=False,
                                              upstream=verdicts)
            continue
        key = request_key(node, hashes, plan.backend)
        held = None if cache is None or refreshing(node.step) else cache.peek_generation(key)
        if held is not None:
            images[nid] = held
        verdicts[nid] = explainer.explain(node, node_request(node, hashes), key=key,
                                          cached=held is not None)
    return verdicts


def verdicts(
    plan: Plan,
    *,
    out: Path | None = None,
    cache_dir: Path | None = None,
    variables: bool = False,
    lock_path: Path | None = None,
    refresh_all: bool = False,
    refresh_steps: frozenset[str] = frozenset(),
) -> dict[str, Verdict]:
    """Every node's verdict as ``run`` with these options would see it, before it runs:
    against the cache folder (read only; none yet means nothing is cached) and the lock
    that run would use (``flowpipe.store.lock.lock_place``), else the output folder's
    manifest."""
    check_steps(plan, refresh_steps, option="refresh_steps")
    out = Path(out) if out is not None else default_out_dir(plan.name)
    place = lock_place(plan.recipe_path, out, backend=plan.backend, variables=variables,
                       chosen=lock_path)
    baseline = load_baseline(list(dict.fromkeys([place.path, place.committed])), out)
    with existing_cache(cache_dir) as cache:
        return explain_plan(plan, cache, baseline,
                            refreshing=lambda step: refresh_all or step in refresh_steps,
                            picks=plan_picks(plan))


def plan_picks(plan: Plan) -> Picks | None:
    """``RECIPE.picks.yaml`` when a node uses ``STEP.pick``, else None (PicksError if bad)."""
    if any(ref.pick for node in plan.nodes.values() for ref in node.refs):
        return read_picks(picks_path(plan.recipe_path))
    return None


def ref_sha(
    plan: Plan, ref: Ref, made: Mapping[str, Sequence[str]], picks: Picks | None
) -> str | None:
    """The hex SHA-256 of the bytes ``ref`` means now: an asset's, or an image of
    ``made`` (each node's image hashes known so far, in order), the picked one for a
    ``STEP.pick``. None when that needs a run: the node is not made, has no such image,
    or has no pick, or a stale one (it names bytes the node no longer has)."""
    if ref.kind == "asset":
        assert ref.asset is not None
        return plan.assets[ref.asset].sha256
    shas = made.get(ref.node or "")
    if shas is None:
        return None
    if ref.pick:
        pick = picks.get(ref.node or "") if picks is not None else None
        if pick is None or pick.image is None or pick.stale(shas):
            return None
        return pick.sha256
    assert ref.index is not None
    return shas[ref.index] if ref.index < len(shas) else None


def known_hashes(
    plan: Plan, node: Node, made: Mapping[str, Sequence[str]], picks: Picks | None
) -> dict[Ref, str] | None:
    """``ref_sha`` of each of the node's references, or None when one needs a run."""
    hashes: dict[Ref, str] = {}
    for ref in node.refs:
        sha = ref_sha(plan, ref, made, picks)
        if sha is None:
            return None
        hashes[ref] = sha
    return hashes


def chain(plan: Plan, verdicts: Mapping[str, Verdict], node_id: str) -> Iterator[tuple[int, str]]:
    """``(depth, line)`` of a node's verdict and, beneath it, the upstream nodes that
    are not cached, each once: why it runs, all the way up."""
    seen: set[str] = set()

    def walk(nid: str, depth: int) -> Iterator[tuple[int, str]]:
        verdict = verdicts[nid]
        if nid in seen:
            yield depth, f"{nid}: {verdict.state} (see above)"
            return
        seen.add(nid)
        yield depth, f"{nid}: {verdict.state}"
        for reason in verdict.why:
            yield depth + 1, reason
        for dep in plan.nodes[nid].deps:
            if verdicts[dep].state != "cached":
                yield from walk(dep, depth + 1)

    yield from walk(node_id, 0)


def text_change(old: str, new: str) -> str:
    """A short word-level difference with a word of context on each side:
    ``"…sweep, soft light" → "…sweep, hard noon light"`` (at most two places shown)."""
    a, b = old.split(), new.split()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    ops = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not ops:
        return "whitespace changed"
    shown = [f"{_span(a, i1, i2)} → {_span(b, j1, j2)}"
             for _, i1, i2, j1, j2 in ops[:_SHOWN_CHANGES]]
    more = f" (+{len(ops) - _SHOWN_CHANGES} more)" if len(ops) > _SHOWN_CHANGES else ""
    return "; ".join(shown) + more


def _span(words: Sequence[str], start: int, end: int) -> str:
    """Words ``start:end`` with one word of context each side, quoted, ``…`` where cut."""
    first, last = max(0, start - _CONTEXT), min(len(words), end + _CONTEXT)
    text = " ".join(words[first:last])
    text = ("…" if first else "") + text + ("…" if last < len(words) else "")
    return '"' + one_line(text, _SPAN) + '"'


_REFERENCE = re.compile(r"^(?:sha256:|node:)")
_ORDER = ("prompt", "model", "aspectRatio", "count", "seed", "resolution")


def _is_reference(value: object) -> bool:
    return isinstance(value, str) and _REFERENCE.match(value) is not None


def _ordered(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    names = list(dict.fromkeys([*after, *before]))
    return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def _named(ref: Ref) -> str:
    """``context hero.0``: a reference's role and its text, on one line."""
    return f"{ref.role} {one_line(ref.text, 120)}"


def _short(value: object) -> str:
    text = str(value)
    return text.removeprefix("sha256:")[:12] if text.startswith("sha256:") else one_line(text, 24)


def _shown(name: str, value: object) -> str:
    if value is None:
        return "random" if name == "seed" else "none"
    return one_line(str(value), 60)


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.name
