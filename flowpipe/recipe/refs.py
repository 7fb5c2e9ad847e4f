"""Resolve a rendered reference (``STEP.N``, ``STEP[k=v,...].N``, ``STEP.pick``, ``assets.NAME``).

A reference names one image: image N of a node, the image a reviewer picked of a node
(``.pick``, from ``RECIPE.picks.yaml``; known only when the run gets there), or an
asset file. Anything that does
not resolve is a RefProblem whose message says what exists instead (did-you-mean for
step ids, asset names and matrix values; the valid index range).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flowpipe.recipe.expand import StepInfo
from flowpipe.recipe.messages import did_you_mean, one_line, quote

__all__ = ["RefProblem", "Target", "resolve_reference"]

_ASSET = re.compile(r"assets\.(?P<name>.*)", re.DOTALL)
_NODE = re.compile(
    r"(?P<step>[A-Za-z_][A-Za-z0-9_-]*)(?:\[(?P<sel>.*)\])?\.(?P<index>[+-]?[0-9]+|pick)",
    re.DOTALL,
)
_PAIR_SPLIT = re.compile(r",\s*(?=[A-Za-z_][A-Za-z0-9_]*\s*=)")
_SHOWN_VARIANTS = 6
_MAX_INDEX_DIGITS = 9  # past this an index is out of range anyway; int() of 4,301 digits raises


@dataclass(frozen=True, slots=True)
class Target:
    """What a reference points at: image ``index`` of ``node`` (or its picked image,
    ``pick``), or asset ``asset``."""

    node: str | None = None
    index: int | None = None
    asset: str | None = None
    pick: bool = False


class RefProblem(Exception):
    """A reference that does not resolve; ``hint`` says what to write instead."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def resolve_reference(
    text: str, *, steps: Mapping[str, StepInfo], assets: Mapping[str, object]
) -> Target:
    """Resolve ``text`` or raise RefProblem."""
    match = _ASSET.fullmatch(text)
    if match:
        name = match.group("name")
        if name not in assets:
            raise RefProblem(
                f"no asset named {quote(name)}{did_you_mean(name, assets, listing=8)}",
                hint=None if assets else "declare it under 'assets:'",
            )
        return Target(asset=name)
    match = _NODE.fullmatch(text)
    if not match:
        raise RefProblem(
            "a reference is STEP.N, STEP[k=v].N, STEP.pick or assets.NAME",
            hint="for example 'hero.0', 'closeup[angle=side].1' or 'hero.pick'",
        )
    step_id, selector, which = match.group("step"), match.group("sel"), match.group("index")
    step = steps.get(step_id)
    if step is None:
        raise RefProblem(
            f"no step named {quote(step_id)}{did_you_mean(step_id, steps, listing=8)}"
        )
    node = _select(step, selector)
    if which == "pick":
        return Target(node=node, pick=True)
    index = int(which) if len(which.lstrip("+-")) <= _MAX_INDEX_DIGITS else None
    count = step.count_of(node)
    if index is None or not 0 <= index < count:
        who = f"step {step.id!r}" if count == step.count else f"node {node!r}"
        raise RefProblem(
            f"{who} makes {count} image{'s' if count > 1 else ''} ({_index_range(count)})",
            hint=f"use an index from {_index_range(count)}",
        )
    return Target(node=node, index=index)


def _index_range(count: int) -> str:
    return "0" if count == 1 else f"0-{count - 1}"


def _select(step: StepInfo, selector: str | None) -> str:
    """The node id a selector picks out of ``step``'s variants."""
    if selector is None:
        if not step.matrix_keys:
            return step.id
        raise RefProblem(
            f"step {step.id!r} has a matrix; name one variant, e.g. {_listing(step)}",
            hint="add the variant in brackets: STEP[k=v].N",
        )
    if not step.matrix_keys:
        raise RefProblem(
            f"step {step.id!r} has no matrix, so no [..] selector", hint=f"write '{step.id}.N'"
        )
    wanted: dict[str, str] = {}
    for pair in _PAIR_SPLIT.split(selector):
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise RefProblem(f"selector {quote(selector)}: expected k=v pairs separated by ','")
        if key not in step.matrix_keys:
            raise RefProblem(
                f"step {step.id!r} has no matrix variable {quote(key)}"
                f"{did_you_mean(key, step.matrix_keys, listing=8)}"
            )
        if key in wanted:
            raise RefProblem(f"selector {quote(selector)} names {key!r} twice")
        wanted[key] = value.strip()
    if len(wanted) == len(step.matrix_keys):
        node = step.variants.get(tuple(wanted[k] for k in step.matrix_keys))
        found = [node] if node else []
    else:
        found = [
            node
            for texts, node in step.variants.items()
            if all(texts[step.matrix_keys.index(k)] == v for k, v in wanted.items())
        ]
    if len(found) == 1:
        return found[0]
    asked = f"{step.id}[{','.join(f'{k}={v}' for k, v in wanted.items())}]"
    if not found:
        near = did_you_mean(asked, list(step.variants.values()))
        raise RefProblem(
            f"step {step.id!r} has no variant {one_line(asked, 120)}"
            f"{near or ' (variants: ' + _listing(step) + ')'}"
        )
    raise RefProblem(
        f"{one_line(asked, 120)} matches {len(found)} variants of step {step.id!r}",
        hint=f"name every matrix variable: {', '.join(step.matrix_keys)}",
    )


def _listing(step: StepInfo) -> str:
    ids = list(step.variants.values())
    shown = ", ".join(f"{i}.0" for i in ids[:_SHOWN_VARIANTS])
    return shown + (f", … {len(ids) - _SHOWN_VARIANTS} more" if len(ids) > _SHOWN_VARIANTS else "")
