"""Step graph layout."""

from __future__ import annotations

from flowpipe.report.dag import BOX_W, GAP_X, PAD, DagStep, layout_dag


def _step(step_id: str, *deps: str) -> DagStep:
    return DagStep(id=step_id, anchor=f"s-{step_id}", state="done", detail="", deps=deps)


def test_columns_follow_depth_and_edges_follow_deps() -> None:
    layout = layout_dag(
        [
            _step("hero"),
            _step("closeup", "hero"),
            _step("poster", "hero", "closeup"),
            _step("alone"),
        ]
    )
    x = {b.step.id: b.x for b in layout.boxes}
    column = {k: (v - PAD) // (BOX_W + GAP_X) for k, v in x.items()}
    assert column == {"hero": 0, "closeup": 1, "poster": 2, "alone": 0}
    assert {(e.source, e.target) for e in layout.edges} == {
        ("hero", "closeup"),
        ("hero", "poster"),
        ("closeup", "poster"),
    }
    assert layout.width == 2 * PAD + 3 * BOX_W + 2 * GAP_X


def test_cycle_and_unknown_dependency_do_not_hang() -> None:
    layout = layout_dag([_step("a", "b"), _step("b", "a"), _step("c", "missing")])
    assert {b.step.id for b in layout.boxes} == {"a", "b", "c"}
    assert all(e.source != "missing" for e in layout.edges)


def test_long_names_are_shortened_in_the_box() -> None:
    layout = layout_dag([_step("a-very-long-step-name-indeed")])
    assert layout.boxes[0].label.endswith("…") and len(layout.boxes[0].label) == 20
