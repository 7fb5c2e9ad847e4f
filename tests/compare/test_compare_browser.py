"""compare.html in headless Chromium: it opens cleanly, the slider wipes, Blink flips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowpipe.compare import compare, write_compare

pytestmark = pytest.mark.browser


def test_the_page_opens_and_its_overlay_works(edited_once, browser: Any, tmp_path: Path,
                                               artifacts_dir: Path) -> None:
    _, before, after, cache = edited_once
    page_path = write_compare(compare(before, after, cache_dir=cache), tmp_path / "c.html")
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(page_path.as_uri(), wait_until="load")
    assert page.locator("section.node").count() == 1
    assert page.locator("details.same").get_attribute("open") is None  # folded
    over = page.locator(".overlay .over")
    page.locator("[data-slider]").fill("20")
    assert "20%" in over.evaluate("e => e.style.clipPath")
    page.locator("[data-blink]").click()
    assert page.locator("[data-blink]").inner_text() == "Stop"
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.screenshot(path=str(artifacts_dir / "compare.png"), full_page=True)
    assert errors == []
    context.close()
