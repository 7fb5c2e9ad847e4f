"""Write ``OUT/report.html``: the contact sheet an art director reviews.

The page is one self-contained file beside the images: inline CSS and script, thumbnails
in ``OUT/.thumbs/``, full images linked by their relative paths, nothing fetched from
a network (a Content-Security-Policy says so to the browser, and only the page's own
script, by hash, may run). Every recipe string goes through Jinja's autoescape, or
through ``safe_json`` when it is data for the script.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from flowpipe.dialects import DIALECTS
from flowpipe.errors import OutputError
from flowpipe.report.dag import DagLayout, DagStep, layout_dag
from flowpipe.report.model import ManifestData, load_manifest, load_run
from flowpipe.report.reviewer import (
    asset_sources,
    choices,
    image_hrefs,
    load_picks,
    node_facts,
    picks_json,
    picks_yaml,
    recipe_of,
    ref_thumbs,
)
from flowpipe.report.thumbs import Thumb, ensure_thumbnails
from flowpipe.report.timeline import CHART_HEIGHT, CHART_WIDTH, AccountChart, timeline_charts
from flowpipe.report.view import StepView, build_steps, image_entries
from flowpipe.store.manifest import ManifestImage
from flowpipe.store.outputs import atomic_write
from flowpipe.store.picks import picks_path
from flowpipe.store.runlog import RunLog

__all__ = ["LAZY_THRESHOLD", "PausedAccount", "ReviewMode", "Stat", "paused_accounts",
           "render_report", "safe_json", "write_report"]

LAZY_THRESHOLD = 400
"""Above this many images, thumbnails load lazily as they scroll into view."""

_JSON_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


@dataclass(frozen=True, slots=True)
class ReviewMode:
    """The page as ``flowpipe review`` serves it: picking on, picks sent to ``api`` and
    written beside ``recipe`` (the server's, which ``--recipe`` may name: not run.json's)."""

    api: str  # the picks endpoint, relative to the page
    recipe: Path

    @property
    def picks_file(self) -> str:
        """The file the picks go to, as the page names it."""
        return picks_path(self.recipe).name


@dataclass(frozen=True, slots=True)
class Stat:
    """One tile of the run summary."""

    label: str
    value: str
    tone: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class PausedAccount:
    """A quota pause the run met (2026-07), as the run summary's line shows it."""

    account: str
    model: str | None
    reason: str
    meaning: str
    span: str  # when, in the run's time


def paused_accounts(run: RunLog | None) -> tuple[PausedAccount, ...]:
    """Who the API paused during the run, why, and from when to when."""
    rows = []
    for pause in run.pauses if run else ():
        meaning = next((d.rate_reasons[pause.reason].meaning for d in DIALECTS.values()
                        if pause.reason in d.rate_reasons), "")
        end = (f"back at {_fmt_seconds(pause.resumed)}" if pause.resumed is not None
               else f"still out when the run ended (until {_fmt_seconds(pause.until)})")
        rows.append(PausedAccount(pause.account, pause.model, pause.reason, meaning,
                                  f"from {_fmt_seconds(pause.at)}, {end}"))
    return tuple(rows)


def safe_json(value: object) -> Markup:
    """JSON that cannot end a <script> element or start markup inside it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.translate(_JSON_ESCAPES))  # noqa: S704 - every markup char escaped above


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("flowpipe.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["seconds"] = _fmt_seconds
    return env


@functools.cache
def _asset(name: str) -> str:
    return resources.files("flowpipe.report").joinpath("templates", name).read_text("utf-8")


def _csp(script: str, *, review: bool = False) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    connect = " connect-src 'self';" if review else ""
    return (
        "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}';{connect} base-uri 'none'; form-action 'none'"
    )


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _fmt_when(stamp: str | None) -> str:
    if not stamp:
        return "—"
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    zone = " UTC" if when.utcoffset() is not None and not when.utcoffset() else ""
    return when.strftime("%Y-%m-%d %H:%M:%S") + zone


def _stats(manifest: ManifestData, run: RunLog | None) -> tuple[Stat, ...]:
    counted = {s: sum(n.status == s for n in manifest.nodes) for s in ("done", "failed", "skipped")}
    images = sum(len(n.images) for n in manifest.nodes)
    summary = run.summary if run else {}

    def get(key: str, fallback: int | None = None) -> str:
        value = summary.get(key, fallback)
        return "—" if value is None else f"{value:,}"

    done = summary.get("done", counted["done"])
    cached_note = f"of {done:,} done" if "cached" in summary else ""
    uploads = summary.get("uploads")
    uploads_note = f"{uploads:,} upload{'s' if uploads != 1 else ''}" if uploads is not None else ""
    failed_tone = "failed" if counted["failed"] else ""
    skipped_tone = "skipped" if counted["skipped"] else ""
    return (
        Stat("Nodes", get("nodes", len(manifest.nodes))),
        Stat("Done", get("done", counted["done"]), "done"),
        Stat("From cache", get("cached"), "cached", cached_note),
        Stat("Failed", get("failed", counted["failed"]), failed_tone),
        Stat("Skipped", get("skipped", counted["skipped"]), skipped_tone),
        Stat("Images", get("images", images)),
        Stat("API calls", get("api_calls"), "", uploads_note),
        Stat("Retries", get("retries"), "", _reuploads(summary)),
        Stat("Rejections", get("rejections"), "", "429/503 capacity"),
        Stat("Wall time", _fmt_seconds(run.wall_seconds) if run else "—"),
    )


def _reuploads(summary: Mapping[str, int]) -> str:
    """A 403 answered by uploading the reference again is not a retry: said apart."""
    count = summary.get("reuploads")
    return f"{count:,} re-upload{'s' if count != 1 else ''} after 403" if count else ""


def _dag(steps: tuple[StepView, ...]) -> DagLayout:
    boxes = []
    for s in steps:
        counts = dict(s.counts)
        total = sum(counts.values())
        detail = f"{total} node{'s' if total != 1 else ''}"
        for state in ("failed", "skipped", "waiting"):
            if counts.get(state):
                detail += f" · {counts[state]} {state}"
        if counts.get("cached") == total and total:
            detail += " · cached"
        boxes.append(DagStep(id=s.id, anchor=s.anchor, state=s.state, detail=detail, deps=s.deps))
    return layout_dag(boxes)


def _write_atomic(path: Path, text: str) -> None:
    try:
        atomic_write(path, text.encode("utf-8"))
    except OutputError as exc:
        raise OutputError(f"{path}: cannot be written: {exc.message}") from None


def write_report(out: Path, *, thumb_cache: Path | None = None) -> Path:
    """Write OUT/report.html (and OUT/.thumbs/) from OUT/manifest.json and OUT/run.json.

    Returns the report's path. A missing or garbled manifest, or an unwritable folder,
    is an ``OutputError`` with a one-line message. ``thumb_cache`` is a folder that
    keeps thumbnails across output folders (a run gives ``CACHE/thumbs``): the ones it
    has are linked or copied into ``OUT/.thumbs/`` instead of being drawn again.
    """
    out = Path(out)
    html = render_report(out, thumb_cache=thumb_cache)
    target = out / "report.html"
    _write_atomic(target, html)
    return target


def render_report(out: Path, *, review: ReviewMode | None = None,
                  thumb_cache: Path | None = None) -> str:
    """The contact sheet of ``out`` as HTML.

    Without ``review`` it is the static page (thumbnails made as needed, through
    ``thumb_cache`` when given); with it, the page ``flowpipe review`` serves, which
    writes nothing: images without a thumbnail show the full file.
    """
    out = Path(out)
    if not out.is_dir():
        raise OutputError(f"{out}: no such output folder; run `flowpipe run` first")
    manifest = load_manifest(out)
    run, run_note = load_run(out)
    recipe = review.recipe if review is not None else recipe_of(out, run)
    entries = image_entries(manifest, out)
    sources = [
        *((sha, source, (e.width, e.height) if e.width and e.height else None)
          for sha, source, e in entries),
        *((sha, source, None) for sha, source in asset_sources(manifest, recipe)),
    ]
    thumbs = dict(ensure_thumbnails(out, sources, write=review is None, shared=thumb_cache))
    if review is not None:
        thumbs.update(_full_images_as_thumbs(out, entries, thumbs))
    steps, lightbox = build_steps(manifest, run, out, thumbs)
    facts = node_facts(manifest)
    picks = load_picks(recipe)
    hrefs = image_hrefs(manifest, out)
    members = {s.id: [g.node for g in s.groups] for s in steps}
    charts: tuple[AccountChart, ...] = timeline_charts(run) if run else ()
    script = _asset("report.js") + "\n" + _asset("reviewer.js")
    data = {
        "images": lightbox,
        "nodes": facts,
        "picks": picks_json(picks.picks),
        "picks_yaml": picks_yaml(picks.picks, manifest),
        "picks_file": picks.name or "RECIPE.picks.yaml",
        "review": None if review is None else {"api": review.api, "file": review.picks_file},
    }
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            manifest=manifest,
            run=run,
            run_note=run_note,
            backend=(run.backend_kind if run and run.backend_kind else manifest.backend) or "—",
            base_url=run.base_url if run else None,
            when=_fmt_when(run.started_at if run else None),
            stats=_stats(manifest, run),
            pauses=paused_accounts(run),
            charts=charts,
            chart_width=CHART_WIDTH,
            chart_height=CHART_HEIGHT,
            dag=_dag(steps),
            steps=steps,
            image_count=len(lightbox),
            lazy=len(lightbox) > LAZY_THRESHOLD,
            data=safe_json(data),
            css=Markup(_asset("report.css") + _asset("reviewer.css")),  # noqa: S704 - ours
            script=Markup(script),  # noqa: S704 - our own packaged script, hashed in the CSP
            csp=_csp(script, review=review is not None),
            review=review,
            picks=picks,
            models=choices(facts, "model"),
            ratios=choices(facts, "ratio"),
            ref_thumbs={sid: ref_thumbs(nodes, thumbs, hrefs) for sid, nodes in members.items()},
        )
    )


def _full_images_as_thumbs(
    out: Path, entries: list[tuple[str, Path, ManifestImage]], thumbs: Mapping[str, Thumb | None]
) -> dict[str, Thumb]:
    """For the review server: the image itself where no thumbnail file exists yet."""
    found = {}
    for sha, source, image in entries:
        if thumbs.get(sha) is None and source.is_file():
            rel = source.relative_to(out).as_posix()
            found[sha] = Thumb(quote(rel, safe="/=,"), image.width or 1, image.height or 1)
    return found
