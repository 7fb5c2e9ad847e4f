"""What 2026-07 adds to the stored files: PNG bytes in the cache, pauses in run.json."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

from PIL import Image

from flowpipe.imagebytes import sniff_image
from flowpipe.store import CachedGeneration, CachedImage, CacheStore, ResponseCache, sha256_hex
from flowpipe.store.runlog import PauseRun, read_run_log, write_run_log

from .conftest import make_jpeg
from .test_runlog import LOG


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 9), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def test_png_bytes_are_kept_and_their_format_recorded(store: CacheStore) -> None:
    cache = ResponseCache(store)
    blobs = [make_jpeg((1, 2, 3)), _png()]
    gen = CachedGeneration(
        images=tuple(
            CachedImage(sha256=sha256_hex(b), seed=None, media_generation_id="", width=16,
                        height=9, format=kind)
            for b, kind in zip(blobs, ("jpeg", "png"), strict=True)
        ),
        account="a@example.com", model_used="nano-banana-2", attempts=1, generation_seconds=1.0,
    )
    cache.put_generation("k", gen, blobs)
    got = cache.get_generation("k")
    assert got is not None and got == (gen, blobs)
    assert [img.extension for img in got[0].images] == ["jpg", "png"]
    assert cache.corrupt_entries == 0


def test_a_cut_png_is_damage_like_a_cut_jpeg(store: CacheStore) -> None:
    data = _png()
    assert sniff_image(data) == "png" and sniff_image(make_jpeg((1, 1, 1))) == "jpeg"
    assert sniff_image(data[:-5]) is None and sniff_image(b"") is None
    store.put(f"img:{sha256_hex(data)}", data[:-5])
    assert ResponseCache(store).get_image(sha256_hex(data)) is None


def test_records_from_before_png_read_as_jpeg() -> None:
    record = {"images": [{"sha256": "ab", "seed": 1, "media_generation_id": "x", "width": 1,
                          "height": 1}], "account": "a", "model_used": "m", "attempts": 1,
              "generation_seconds": 0.5}
    gen = CachedGeneration.from_json(json.dumps(record).encode())
    assert gen.images[0].format == "jpeg"


def test_pauses_are_written_and_read_back(tmp_path: Path) -> None:
    pauses = (PauseRun(1.5, "a@x", None, "THROTTLED", 19.5, 19.5),
              PauseRun(3.0, "b@x", "nano-banana-pro", "PER_MODEL", 900.0))
    write_run_log(tmp_path, dataclasses.replace(LOG, pauses=pauses))
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["pauses"][1] == {"at": 3.0, "account": "b@x", "model": "nano-banana-pro",
                                 "reason": "PER_MODEL", "until": 900.0, "resumed": None}
    log, note = read_run_log(tmp_path)
    assert note is None and log is not None and log.pauses == pauses


def test_pauses_are_read_leniently(tmp_path: Path) -> None:
    write_run_log(tmp_path, LOG)
    data = json.loads((tmp_path / "run.json").read_text())
    data["pauses"] = [{"at": 1, "account": "a", "reason": "R", "until": 2}, {"at": "x"}, 7]
    (tmp_path / "run.json").write_text(json.dumps(data))
    log, _ = read_run_log(tmp_path)
    assert log is not None and [p.account for p in log.pauses] == ["a"]
    del data["pauses"]  # a run.json from before pauses
    (tmp_path / "run.json").write_text(json.dumps(data))
    log, _ = read_run_log(tmp_path)
    assert log is not None and log.pauses == ()
