"""write_report: escaping, thumbnails, links, layout, fallbacks and failures."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from flowpipe.errors import OutputError
from flowpipe.report import render, write_report
from flowpipe.report.render import safe_json

from .fabricate import (
    HOSTILE_ERROR,
    HOSTILE_PALETTE,
    HOSTILE_PROMPT,
    XSS_ATTR,
    XSS_SCRIPT,
    Fabricated,
    fabricate_output,
)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside each element."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


def html_of(fab: Fabricated) -> str:
    return (fab.out / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "hostile",
    [XSS_SCRIPT, XSS_ATTR, HOSTILE_PALETTE, HOSTILE_ERROR, "<b>"],
    ids=["script", "attr", "amp-tag", "close-script", "bold"],
)
def test_hostile_strings_never_appear_raw(reported: Fabricated, hostile: str) -> None:
    html = html_of(reported)
    assert hostile not in html
    assert html.count("</script>") == 2  # the data block and the page's own script


def test_hostile_prompt_is_shown_escaped_as_text(reported: Fabricated) -> None:
    html = html_of(reported)
    assert "&lt;script&gt;window.__xss = 1; alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=" in html
    tags = parse(html)
    assert not any(tag == "img" and attrs.get("onerror") for tag, attrs in tags.tags)
    inline = [t for t, a in tags.tags if t == "script" and a.get("type") != "application/json"]
    assert len(inline) == 1


def test_hostile_text_in_attributes_stays_inside_the_attribute(reported: Fabricated) -> None:
    tags = parse(html_of(reported))
    alts = [a["alt"] for t, a in tags.tags if t == "img" and a.get("alt")]
    assert any(HOSTILE_PALETTE in (alt or "") for alt in alts)
    for _, attrs in tags.tags:
        assert "onerror" not in attrs and "onload" not in attrs


def test_embedded_json_is_safe_and_round_trips(reported: Fabricated) -> None:
    html = html_of(reported)
    match = re.search(r'<script type="application/json" id="fp-data">(.*?)</script>', html, re.S)
    assert match
    raw = match.group(1)
    assert "<" not in raw and ">" not in raw and "&" not in raw
    data = json.loads(raw)
    prompts = {item["prompt"] for item in data["images"]}
    assert HOSTILE_PROMPT in prompts


@pytest.mark.parametrize(
    ("value", "forbidden"),
    [
        ("</script><script>x()</script>", "</script"),
        ("<!-- x", "<!--"),
        ("a & b", "&"),
        ("line\u2028sep\u2029para", "\u2028"),
        ("line\u2028sep\u2029para", "\u2029"),
    ],
    ids=["close-script", "comment", "ampersand", "u2028", "u2029"],
)
def test_safe_json_escapes_markup_and_line_separators(value: str, forbidden: str) -> None:
    text = str(safe_json({"v": value}))
    assert forbidden not in text
    assert json.loads(text) == {"v": value}


def test_failure_and_skip_show_why_and_what_to_try(reported: Fabricated) -> None:
    html = html_of(reported)
    for text in (
        "ModerationError",
        "HTTP 500",
        "PUBLIC_ERROR_UNSAFE_GENERATION",
        "reword the prompt, or allow fallback_model: nano-banana",
        "upstream node &#39;banner&#39; failed",
        "Fix the upstream node that failed",
    ):
        assert text in html
    assert "model said &lt;/script&gt;" in html
    assert HOSTILE_ERROR not in html


def test_thumbnails_are_named_by_image_hash_and_small(reported: Fabricated) -> None:
    thumbs = reported.out / ".thumbs"
    names = {p.name for p in thumbs.iterdir()}
    hashes = {img["sha256"] for node in reported.manifest["nodes"] for img in node["images"]}
    assert names == {f"{h}.jpg" for h in hashes}
    for path in thumbs.iterdir():
        with Image.open(path) as im:
            assert im.width <= 384
    thumbs_size = sum(p.stat().st_size for p in thumbs.iterdir())
    assert thumbs_size < reported.images_bytes() / 4


def test_second_write_reuses_thumbnails(
    fabricated: Fabricated, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_report(fabricated.out)
    before = {p.name: p.stat().st_mtime_ns for p in (fabricated.out / ".thumbs").iterdir()}
    made: list[object] = []
    original = render.ensure_thumbnails.__globals__["_make"]

    def counting(job: object, folder: Path) -> object:
        made.append(job)
        return original(job, folder)

    monkeypatch.setitem(render.ensure_thumbnails.__globals__, "_make", counting)
    write_report(fabricated.out)
    after = {p.name: p.stat().st_mtime_ns for p in (fabricated.out / ".thumbs").iterdir()}
    assert made == []
    assert after == before


def test_deleted_thumbnail_is_remade_and_stale_one_removed(fabricated: Fabricated) -> None:
    write_report(fabricated.out)
    thumbs = fabricated.out / ".thumbs"
    victim = sorted(thumbs.iterdir())[0]
    victim.unlink()
    stale = thumbs / f"{'0' * 64}.jpg"
    stale.write_bytes(b"old")
    write_report(fabricated.out)
    assert victim.exists()
    assert not stale.exists()


def test_no_full_size_copies_and_links_point_at_originals(reported: Fabricated) -> None:
    originals = {
        hashlib.sha256((reported.out / p).read_bytes()).hexdigest(): p for p in reported.image_paths
    }
    for path in reported.out.rglob("*.jpg"):
        rel = path.relative_to(reported.out).as_posix()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in originals:
            assert originals[digest] == rel
    tags = parse(html_of(reported))
    hrefs = {a["href"] for t, a in tags.tags if t == "a" and a.get("class") == "thumb"}
    assert {unquote(h or "") for h in hrefs} == set(reported.image_paths)


def test_no_external_urls(reported: Fabricated) -> None:
    html = html_of(reported)
    tags = parse(html)
    for tag, attrs in tags.tags:
        for name in ("src", "href", "action", "poster", "srcset", "xlink:href"):
            value = attrs.get(name)
            if value is None:
                continue
            external = re.match(r"^\s*([a-z][a-z0-9+.-]*:|//)", value, re.I)
            assert not external or value.startswith("data:"), (tag, name, value)
    assert all(ref.startswith("#") for ref in re.findall(r"url\(\s*['\"]?([^)'\"]*)", html))
    assert "@import" not in html
    csp = next(a["content"] for t, a in tags.tags if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in (csp or "")


def test_csp_allows_exactly_the_inline_script(reported: Fabricated) -> None:
    tags = parse(html_of(reported))
    csp = next(a["content"] for t, a in tags.tags if t == "meta" and a.get("http-equiv"))
    script = next(s for s in tags.scripts if "use strict" in s)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in (csp or "")
    assert "unsafe-inline" not in (csp or "").split("script-src", 1)[1].split(";", 1)[0]


def _table(html: str, step_anchor: str) -> list[list[str]]:
    """Rows of the step's matrix table: header texts, then each row's th and cell links."""
    section = html.split(f'id="{step_anchor}"', 1)[1].split("<section", 1)[0]
    table = section.split("<table", 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r"<tr.*?</tr>", table, re.S):
        cells = []
        for cell in re.findall(r"<t[hd]\b.*?</t[hd]>", row, re.S):
            links = re.findall(r'class="thumb" href="([^"]+)"', cell)
            text = re.sub(r"<[^>]+>", "", cell).strip()
            cells.append(" ".join(links) if links else text)
        rows.append(cells)
    return rows


def test_two_variable_matrix_is_a_table(reported: Fabricated) -> None:
    rows = _table(html_of(reported), "step-1")
    assert rows[0][1:] == ["teal", "amber &amp; &lt;b&gt;rust&lt;/b&gt;"]
    assert [r[0] for r in rows[1:]] == ["front", "side"]
    assert (
        rows[2][1] == "closeup/angle=side,palette=teal/0.jpg closeup/angle=side,palette=teal/1.jpg"
    )
    assert rows[1][2].startswith("closeup/angle=front,palette=amber%20%26%20%3Cb%3Erust")


def test_one_variable_matrix_is_a_one_column_table(tmp_path: Path) -> None:
    fab = fabricate_output(tmp_path / "out", bulk_variants=3)
    write_report(fab.out)
    steps = [s["id"] for s in fab.manifest["steps"]]
    rows = _table(html_of(fab), f"step-{steps.index('variations')}")
    assert rows[0][1:] == ["images"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert rows[2][1].split() == [f"variations/n=1/{i}.jpg" for i in range(4)]


def test_three_variable_matrix_is_a_table_of_the_first_two_per_value_of_the_third(
    fabricated: Fabricated,
) -> None:
    """Issue 13: any two axes as rows x columns; a third makes one table per value."""
    manifest = fabricated.manifest
    closeups = [n for n in manifest["nodes"] if n["step"] == "closeup"]
    for i, node in enumerate(closeups):
        node["variant"]["light"] = "soft" if i % 2 == 0 else "hard"
    manifest["steps"][1]["matrix"]["light"] = ["soft", "hard"]
    (fabricated.out / "manifest.json").write_text(json.dumps(manifest))
    html = write_report(fabricated.out).read_text()
    section = html.split('id="step-1"', 1)[1].split("<section", 1)[0]
    assert section.count("<table") == 2
    assert [c for c in re.findall(r"<caption>([^<]*)</caption>", section)] == [
        "light=soft", "light=hard"
    ]
    assert '<span>angle</span> ↓ <span>palette</span> →' in section


def test_missing_run_json_shows_the_manifest(tmp_path: Path) -> None:
    fab = fabricate_output(tmp_path / "out", with_run=False)
    html = write_report(fab.out).read_text()
    assert "run.json is missing" in html
    assert "No run.json, so no timeline." in html
    stat = re.search(
        r'<div class="stat-value">([^<]*)</div><div class="stat-label">API calls', html
    )
    assert stat and stat.group(1) == "—"
    images = re.search(r'<div class="stat-value">([^<]*)</div><div class="stat-label">Images', html)
    assert images and images.group(1) == str(len(fab.image_paths))


def test_garbled_run_json_is_a_note_not_a_failure(fabricated: Fabricated) -> None:
    (fabricated.out / "run.json").write_text("{not json")
    html = write_report(fabricated.out).read_text()
    assert "not valid JSON" in html


def test_run_summary_and_chart(reported: Fabricated) -> None:
    html = html_of(reported)
    for text in (
        "trail-shoe-launch",
        "examples/campaign.yaml",
        "2026-11-25 10:00:00 UTC",
        "41.3 s",
    ):
        assert text in html
    assert html.count('<path class="window"') == 2
    assert html.count('<path class="rej"') == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ('{"format": 1}', "no 'nodes' list"),
        ('{"nodes": [{"step": "x"}]}', "nodes[0].id"),
        ('{"nodes": [{"id": "a", "images": [{"index": 0}]}]}', "nodes[0].images[0].path"),
        ('{"nodes": "all"}', "expected a list"),
    ],
    ids=["not-json", "list", "no-nodes", "node-without-id", "image-without-path", "nodes-not-list"],
)
def test_garbled_manifest_is_one_line_output_error(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(OutputError) as info:
        write_report(tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("make_folder", [True, False], ids=["no-manifest", "no-folder"])
def test_missing_manifest_or_folder_is_output_error(tmp_path: Path, make_folder: bool) -> None:
    out = tmp_path / "out"
    if make_folder:
        out.mkdir()
    with pytest.raises(OutputError, match="flowpipe run"):
        write_report(out)


def test_unsafe_or_missing_image_paths_get_no_link(fabricated: Fabricated) -> None:
    manifest = fabricated.manifest
    hero = manifest["nodes"][0]
    hero["images"][0]["path"] = "../../etc/passwd"
    hero["images"][1]["path"] = "/etc/passwd"
    (fabricated.out / hero["images"][2]["path"]).unlink()
    (fabricated.out / "manifest.json").write_text(json.dumps(manifest))
    html = write_report(fabricated.out).read_text()
    assert "passwd" not in html
    assert html.count("image file missing") == 3


def test_corrupt_image_gets_a_card_without_preview(fabricated: Fabricated) -> None:
    rel = fabricated.image_paths[0]
    (fabricated.out / rel).write_bytes(b"not a jpeg")
    html = write_report(fabricated.out).read_text()
    assert "no preview: the file cannot be read" in html
    assert f'href="{rel}"' in html


def test_write_is_atomic_and_replaces(fabricated: Fabricated) -> None:
    (fabricated.out / "report.html").write_text("old")
    path = write_report(fabricated.out)
    assert path == fabricated.out / "report.html"
    assert path.read_text().startswith("<!doctype html>")
    leftovers = [p.name for p in fabricated.out.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert path.stat().st_mode & 0o044 == 0o044


@pytest.mark.parametrize(("threshold", "lazy"), [(2, True), (10_000, False)], ids=["big", "small"])
def test_lazy_loading_only_for_big_reports(
    fabricated: Fabricated, monkeypatch: pytest.MonkeyPatch, threshold: int, lazy: bool
) -> None:
    monkeypatch.setattr(render, "LAZY_THRESHOLD", threshold)
    html = write_report(fabricated.out).read_text()
    assert ('loading="lazy"' in html) is lazy
    assert ('<body class="big">' in html) is lazy


def test_cache_status_and_fallback_model_on_cards(reported: Fabricated) -> None:
    html = html_of(reported)
    cards = re.findall(r'<article class="card fi" data-status="(\w+)"', html)
    assert cards.count("cached") == 4 + 2 + 2
    assert cards.count("done") == len(reported.image_paths) - 8
    assert 'class="warn" title="fell back from the requested model">nano-banana' in html
