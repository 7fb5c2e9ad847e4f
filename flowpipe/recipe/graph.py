"""Order nodes so every image is made before a node that uses it.

graphlib does the ordering and finds cycles; among the nodes that are ready at the
same time the one written first in the recipe goes first. A recipe already in
dependency order (the usual case: every reference points up the file) keeps its order
exactly, and is recognised in one pass without building the graph.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter

__all__ = ["Cycle", "topological_order"]


class Cycle(Exception):
    """The nodes form a cycle; ``nodes`` is it, first node repeated at the end."""

    def __init__(self, nodes: Sequence[str]) -> None:
        super().__init__(" -> ".join(nodes))
        self.nodes = tuple(nodes)


def topological_order(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Node ids in dependency order, recipe order where free; raises Cycle."""
    rank = {node: i for i, node in enumerate(order)}
    if all(rank[d] < rank[n] for n in order for d in deps.get(n, ())):
        return list(order)  # already in dependency order, hence no cycle: keep it
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for node in order:
        sorter.add(node, *deps.get(node, ()))
    try:
        sorter.prepare()
    except CycleError as exc:
        cycle = list(reversed(exc.args[1]))  # graphlib lists it against the edges
        raise Cycle(cycle) from None
    ready = [(rank[n], n) for n in sorter.get_ready()]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        result.append(node)
        sorter.done(node)
        for nxt in sorter.get_ready():
            heapq.heappush(ready, (rank[nxt], nxt))
    return result
