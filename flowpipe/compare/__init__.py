"""``flowpipe diff``: two runs of a recipe side by side (output folders, a lock, a recipe)."""

from __future__ import annotations

from flowpipe.compare.diff import Change, Comparison, NodeDiff, compare, word_diff
from flowpipe.compare.html import render_compare, write_compare
from flowpipe.compare.sides import Side, SideImage, SideNode, load_side

__all__ = [
    "Change",
    "Comparison",
    "NodeDiff",
    "Side",
    "SideImage",
    "SideNode",
    "compare",
    "load_side",
    "render_compare",
    "word_diff",
    "write_compare",
]
