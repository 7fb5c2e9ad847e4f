"""How fast the contact sheet is written and opened, and how much room it takes.

Fabricates an output folder with real 1408x768 JPEGs (tests/report/fabricate.py),
writes the report twice (first run makes the thumbnails, the second re-uses them, as
a fully cached re-run does), then opens it from disk in Debian's headless Chromium
and measures the time from navigation start until the load event has fired and every
thumbnail is decoded (median of --runs fresh browser contexts; above 400 images the
report loads thumbnails lazily, and then "every" means every one the page loaded).

    .venv/bin/python benchmarks/report_open.py              # 200 images
    .venv/bin/python benchmarks/report_open.py --images 2000 --runs 3
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from flowpipe.report import write_report

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BASE_IMAGES = 13  # what fabricate_output makes before its bulk step
# Lazy thumbnails (reports above 400 images) below the fold never load without
# scrolling, so their decode() would never settle: count the ones the page loads.
OPEN_JS = """async () => {
  const imgs = Array.from(document.querySelectorAll('.thumb img'))
    .filter(i => i.loading !== 'lazy' || i.complete);
  await Promise.all(imgs.map(i => i.decode()));
  return [performance.now(), imgs.length];
}"""


def _fabricate_module() -> ModuleType:
    path = ROOT / "tests" / "report" / "fabricate.py"
    spec = importlib.util.spec_from_file_location("report_fabricate", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def _open_times(report: Path, runs: int) -> tuple[list[float], int]:
    from playwright.sync_api import sync_playwright

    times = []
    count = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            page.goto(report.as_uri(), wait_until="load")
            elapsed, count = page.evaluate(OPEN_JS)
            times.append(elapsed / 1000)
            context.close()
        browser.close()
    return times, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="about this many images")
    parser.add_argument("--runs", type=int, default=5, help="page loads to take the median of")
    parser.add_argument("--keep", type=Path, default=None, help="fabricate into this folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "out"
        bulk = max(0, -(-(args.images - BASE_IMAGES) // 4))
        t0 = time.perf_counter()
        fab = _fabricate_module().fabricate_output(out, bulk_variants=bulk)
        t_fab = time.perf_counter() - t0

        t0 = time.perf_counter()
        report = write_report(out)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_report(out)
        t_cached = time.perf_counter() - t0

        images = _size([out / p for p in fab.image_paths])
        thumbs = _size(list((out / ".thumbs").iterdir()))
        html = report.stat().st_size
        times, shown = _open_times(report, args.runs)

        print(f"images                      {len(fab.image_paths)} (fabricated in {t_fab:.1f} s)")
        print(f"write_report, thumbnails    {t_first:.2f} s")
        print(f"write_report, cached        {t_cached:.3f} s")
        print(
            f"open in Chromium (median)   {statistics.median(times):.3f} s "
            f"(load + {shown} thumbnails decoded; runs: "
            + ", ".join(f"{t:.3f}" for t in times)
            + ")"
        )
        print(f"report.html                 {html / 1e6:.2f} MB")
        print(f"report folder (html+thumbs) {(html + thumbs) / 1e6:.2f} MB")
        print(f"images                      {images / 1e6:.2f} MB")
        print(f"report / images             {(html + thumbs) / images:.1%}")


if __name__ == "__main__":
    main()
