"""The ratio x model grid and the why of each node, in Debian's headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_browser import CHROMIUM_ARGS, _require_chromium
from .test_grid_and_why import EDITED, make_grid_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[str]]]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    out = make_grid_run(tmp_path_factory.mktemp("grid-browser"))
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        tab = context.new_page()
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto((out / "report.html").as_uri(), wait_until="load")
        tab.evaluate(
            "Promise.all(Array.from(document.querySelectorAll('.thumb img'), i => i.decode()))"
        )
        yield tab, errors
        browser.close()


def test_the_grid_is_a_three_by_two_table_of_loaded_images(
    page: tuple[Any, list[str]], artifacts_dir: Path
) -> None:
    tab, errors = page
    table = tab.locator("table[data-grid='3x2']")
    assert table.count() == 1
    assert table.locator("tbody th").all_text_contents() == ["landscape", "portrait", "square"]
    assert table.locator("thead th[scope=col]").all_text_contents()[1:] == [
        "imagen-4", "nano-banana"
    ]
    shapes = tab.evaluate(
        """Array.from(document.querySelectorAll("table[data-grid='3x2'] tbody tr"), row =>
             Array.from(row.querySelectorAll('td img'), img =>
               img.naturalWidth > 0 ? Math.sign(img.naturalWidth - img.naturalHeight) : null))"""
    )
    assert shapes == [[1, 1], [-1, -1], [0, 0]]  # every cell decoded, in the ratio of its row
    table.screenshot(path=str(artifacts_dir / "report-grid.png"))
    assert errors == []


def test_the_why_of_each_node_is_shown_as_text(page: tuple[Any, list[str]]) -> None:
    tab, _ = page
    hero = tab.locator("section.step", has=tab.locator("h2", has_text="hero")).first
    why = hero.locator("[data-why]")
    assert why.locator(".why-state").text_content() == "changed"
    assert why.locator("li").text_content() == (
        f'prompt: "…sweep, soft light" → "…sweep, {EDITED.split("sweep, ")[1]}"'
    )
    assert why.locator("b").count() == 0  # the recipe's markup stays text
    assert why.is_visible()
    reasons = tab.locator("table[data-grid='3x2'] [data-why] li").all_text_contents()
    assert len(reasons) == 6
    assert all(r.startswith("upstream image changed: context hero.0 (") for r in reasons)
