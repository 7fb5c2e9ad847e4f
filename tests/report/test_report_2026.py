"""The report's 2026-07 parts: paused accounts in the run summary, an upscale's source."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

from PIL import Image

from flowpipe.dialects import PER_MODEL_DAILY_QUOTA_REACHED, USER_REQUESTS_THROTTLED
from flowpipe.report import write_report
from flowpipe.store.manifest import (
    ManifestImage,
    ManifestNode,
    ManifestRef,
    read_manifest,
    steps_of,
    write_manifest,
)
from flowpipe.store.runlog import PauseRun, read_run_log, write_run_log

from .fabricate import ACCOUNT, ACCOUNT_B, fabricate_output


def _add_upscale(out: Path) -> None:
    """An upscale step ``big`` of hero.1, written as the engine writes one."""
    manifest = read_manifest(out)
    hero = next(n for n in manifest.nodes if n.id == "hero")
    buffer = io.BytesIO()
    Image.new("RGB", (2048, 1117), (40, 90, 140)).save(buffer, "PNG")
    data = buffer.getvalue()
    (out / "big" / "default").mkdir(parents=True)
    (out / "big" / "default" / "0.png").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    big = ManifestNode(
        id="big", step="big", variant=(), status="done", key="f" * 64, deps=("hero",),
        prompt="", request={"mediaGenerationId": f"sha256:{hero.images[1].sha256}",
                            "resolution": "2k"},
        references=(ManifestRef("source", "hero.1", hero.images[1].sha256),),
        model_used="nano-banana-pro", attempts=1, generation_seconds=14.0,
        images=(ManifestImage(0, "big/default/0.png", sha, 2048, 1117, None, None),),
        error=None,
    )
    nodes = (*manifest.nodes, big)
    write_manifest(out, dataclasses.replace(manifest, nodes=nodes, steps=steps_of(nodes)))


def test_paused_accounts_and_why_are_in_the_run_summary(tmp_path: Path) -> None:
    fab = fabricate_output(tmp_path / "out")
    log, _ = read_run_log(fab.out)
    assert log is not None
    pauses = (
        PauseRun(12.0, ACCOUNT, None, USER_REQUESTS_THROTTLED, 1812.0, 1812.0),
        PauseRun(30.0, ACCOUNT_B, "nano-banana-pro", PER_MODEL_DAILY_QUOTA_REACHED, 9000.0),
    )
    write_run_log(fab.out, dataclasses.replace(log, pauses=pauses))
    html = write_report(fab.out).read_text(encoding="utf-8")
    line = html.split('<section class="paused"', 1)[1].split("</section>", 1)[0]
    assert ACCOUNT in line and USER_REQUESTS_THROTTLED in line
    assert "the account is taken out for about 30 minutes" in line
    assert "back at 30 min 12 s" in line
    assert "nano-banana-pro only" in line and "still out when the run ended" in line


def test_a_run_without_pauses_has_no_paused_line(tmp_path: Path) -> None:
    fab = fabricate_output(tmp_path / "out")
    assert 'class="paused"' not in write_report(fab.out).read_text(encoding="utf-8")


def test_an_upscale_step_shows_its_source_and_its_png(tmp_path: Path) -> None:
    fab = fabricate_output(tmp_path / "out")
    _add_upscale(fab.out)
    html = write_report(fab.out).read_text(encoding="utf-8")
    section = html.split('<h2><span class="dot dot-done"></span>big</h2>', 1)[1]
    section = section.split("</section>", 1)[0]
    assert '<div class="upscale">upscale of <a href="#step-0"><code>hero.1</code></a> to 2k' \
        in section
    assert 'href="big/default/0.png"' in section
    assert "sha256:" not in section.split('<ul class="refs">')[0]  # no hash as a parameter


def test_2026_reference_fields_are_not_listed_as_parameters(tmp_path: Path) -> None:
    """2026-07 names every reference ``reference_N``: listed apart by its text, like
    2025-11's ``contextReference_N``, never as a ``reference_1: sha256:...`` parameter."""
    fab = fabricate_output(tmp_path / "out")
    manifest = read_manifest(fab.out)

    def spoken_2026(node: ManifestNode) -> ManifestNode:
        request = {k.replace("contextReference_", "reference_"): v
                   for k, v in node.request.items()}
        return dataclasses.replace(node, request=request)

    nodes = tuple(spoken_2026(n) for n in manifest.nodes)
    assert any("reference_1" in n.request for n in nodes)
    write_manifest(fab.out, dataclasses.replace(manifest, nodes=nodes))
    html = write_report(fab.out).read_text(encoding="utf-8")
    assert "reference_1" not in html
    assert "<span>model</span>" in html  # the parameters are there, less the references
