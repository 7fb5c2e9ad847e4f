"""Picking in Debian's headless Chromium: clicks and keys write RECIPE.picks.yaml, a reload
shows the picks, hostile recipe strings stay text, a URL without the token is refused,
and the static report shows the picks read-only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from flowpipe.report import write_report
from flowpipe.review import ReviewConfig, ReviewServer
from flowpipe.store.picks import read_picks

from .conftest import Made

pytestmark = pytest.mark.browser


class Tab:
    """A page with what it logged and popped up."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)


@pytest.fixture
def server(made: Made) -> Iterator[ReviewServer]:
    with ReviewServer(ReviewConfig.for_output(made.out)) as running:
        yield running


@pytest.fixture
def tab(browser: Any, server: ReviewServer) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = Tab(context.new_page())
    opened.page.goto(server.url, wait_until="load")
    yield opened
    context.close()


def _card(page: Any, node: str, index: int) -> Any:
    return page.locator(f'article.card[data-node="{node}"]').nth(index)


def _saved(page: Any) -> None:
    # expect() polls without eval: the page's CSP (script by hash only) stays in force
    expect(page.locator("#pick-status")).to_have_text(re.compile("^Saved"))


def test_a_click_picks_and_the_file_says_so(tab: Tab, server: ReviewServer, made: Made,
                                            artifacts_dir: Path) -> None:
    page = tab.page
    _card(page, "hero", 1).locator("[data-act=pick]").click()
    _saved(page)
    hero = read_picks(server.config.picks).get("hero")
    assert hero is not None and (hero.image, hero.sha256) == (1, made.sha("hero", 1))
    assert _card(page, "hero", 1).get_attribute("data-pick") == "picked"
    _card(page, "hero", 2).locator("[data-act=pick]").click()  # a pick moves, never doubles
    expect(_card(page, "hero", 2)).to_have_attribute("data-pick", "picked")
    hero = read_picks(server.config.picks).get("hero")
    assert hero is not None and hero.image == 2
    assert _card(page, "hero", 1).get_attribute("data-pick") == "none"
    page.screenshot(path=str(artifacts_dir / "review.png"), full_page=True)
    assert tab.errors == []


def test_keys_move_pick_reject_and_write_a_note(tab: Tab, server: ReviewServer,
                                                made: Made) -> None:
    page = tab.page
    page.keyboard.press("ArrowRight")  # the cursor lands on the first image
    page.keyboard.press("ArrowRight")  # hero #1
    assert page.locator("article.card.cur").get_attribute("data-i") == "1"
    page.keyboard.press("x")
    _saved(page)
    hero = read_picks(server.config.picks).get("hero")
    assert hero is not None and dict(hero.rejected) == {1: made.sha("hero", 1)}
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("p")
    expect(page.locator("article.card.cur")).to_have_attribute("data-pick", "picked")
    page.keyboard.press("n")
    page.locator("#note-text").fill("warmer light, keep the ridge")
    page.locator("#note-save").click()
    expect(page.locator('[data-note-for="hero"]')).to_contain_text("warmer light")
    hero = read_picks(server.config.picks).get("hero")
    assert hero is not None
    assert (hero.image, hero.note) == (0, "warmer light, keep the ridge")
    assert tab.errors == []


def test_keys_in_the_image_view_pick_that_image(tab: Tab, server: ReviewServer) -> None:
    page = tab.page
    _card(page, "side[angle=front]", 0).locator("a.thumb").click()
    page.keyboard.press("ArrowRight")
    assert page.locator("#lb-title").inner_text() == "side[angle=front] · #1"
    page.keyboard.press("p")
    expect(page.locator("#lb-pick")).to_have_text("picked")
    pick = read_picks(server.config.picks).get("side[angle=front]")
    assert pick is not None and pick.image == 1
    page.locator("#lb-zoom").click()  # 1:1 and back
    assert "zoom-actual" in (page.locator("#lightbox").get_attribute("class") or "")
    assert page.locator("#lb-download").get_attribute("href") == "side/angle=front/1.jpg"


def test_a_reload_shows_the_picks(tab: Tab) -> None:
    page = tab.page
    _card(page, "hero", 2).locator("[data-act=pick]").click()
    _saved(page)
    _card(page, "hero", 0).locator("[data-act=reject]").click()
    expect(_card(page, "hero", 0)).to_have_attribute("data-pick", "rejected")
    page.reload(wait_until="load")
    assert _card(page, "hero", 2).get_attribute("data-pick") == "picked"
    assert _card(page, "hero", 0).get_attribute("data-pick") == "rejected"
    page.select_option("#f-pick", "picked")
    assert page.locator("article.card:visible").count() == 1


def test_two_tabs_keep_each_others_picks(browser: Any, server: ReviewServer) -> None:
    context = browser.new_context()
    one, two = Tab(context.new_page()), Tab(context.new_page())
    for t in (one, two):
        t.page.goto(server.url, wait_until="load")
    _card(one.page, "hero", 0).locator("[data-act=pick]").click()
    _card(two.page, "side[angle=front]", 1).locator("[data-act=reject]").click()
    _saved(one.page)
    _saved(two.page)
    picks = read_picks(server.config.picks)
    assert set(picks.entries) == {"hero", "side[angle=front]"}
    context.close()


def test_hostile_recipe_strings_stay_text(tab: Tab) -> None:
    page = tab.page
    page.locator("#f-search").fill("onerror")  # search the hostile prompts, open one
    page.locator("a.thumb:visible").first.click()
    page.keyboard.press("Escape")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert tab.dialogs == []
    assert "<script>window.__xss=1</script>" in page.locator("#step-0 blockquote").inner_text()
    assert page.evaluate(
        "document.querySelectorAll('main img:not(.thumb img):not(.ref-img)').length") == 0


def test_a_url_without_the_token_is_refused(browser: Any, server: ReviewServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    parts = urlsplit(server.url)
    for url in (f"{parts.scheme}://{parts.netloc}/", server.url.replace(server.config.token,
                                                                      "x" * 32)):
        response = page.goto(url)
        assert response is not None and response.status == 403
    context.close()


def test_the_static_report_shows_picks_read_only_with_yaml_to_copy(
    browser: Any, server: ReviewServer, made: Made
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url, wait_until="load")
    _card(page, "hero", 1).locator("[data-act=pick]").click()
    _saved(page)
    write_report(made.out)
    page.goto((made.out / "report.html").as_uri(), wait_until="load")
    assert _card(page, "hero", 1).get_attribute("data-pick") == "picked"
    assert page.locator("[data-act=pick]").count() == 0  # read-only
    yaml_text = page.locator("#copy-picks").get_attribute("data-copy")
    assert yaml_text == server.config.picks.read_text()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("p")  # nothing is sent from a file:// page
    assert "Read-only" in page.locator("#pick-status").inner_text()
    context.close()
