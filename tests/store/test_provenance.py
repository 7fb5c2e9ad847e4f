"""The provenance packet: added to JPEG and PNG, read back by flowpipe and by Pillow, and
removed exactly, so the API's bytes (what keys and the cache hold) stay recoverable."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from flowpipe.cli import cli
from flowpipe.store.provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    Provenance,
    api_sha256,
    embed,
    inspect_file,
    packet,
    read_provenance,
    strip,
)
from flowpipe.store.responses import sha256_hex

PROV = Provenance(
    recipe="launch", node="closeup[angle=side]", image=1,
    prompt='shoe on <b onmouseover="x()">rock</b> & "sky"\nsecond line',
    model="nano-banana", seed=1234, aspect_ratio="landscape", request_key="ab" * 32,
    image_sha256="cd" * 32, flowpipe_version="0.1.0", backend="sim",
)


def _image(fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 9), (200, 40, 40)).save(buffer, fmt, **save)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_embed_adds_a_packet_that_strip_removes_exactly(fmt: str) -> None:
    data = _image(fmt)
    stamped = embed(data, PROV)
    assert stamped != data and len(stamped) > len(data)
    assert strip(stamped) == data
    assert api_sha256(stamped) == sha256_hex(data)
    assert read_provenance(stamped) == PROV
    with Image.open(io.BytesIO(stamped)) as im:  # still a valid image, same pixels
        im.load()
        with Image.open(io.BytesIO(data)) as original:
            assert im.tobytes() == original.tobytes()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_pillow_getxmp_reads_the_packet(fmt: str) -> None:
    pytest.importorskip("defusedxml")  # Pillow reads XMP only with it (a test dependency)
    with Image.open(io.BytesIO(embed(_image(fmt), PROV))) as im:
        description = im.getxmp()["xmpmeta"]["RDF"]["Description"]
    assert description["DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert description["node"] == "closeup[angle=side]"
    assert description["model"] == "nano-banana"
    assert description["seed"] == "1234"
    assert description["aspectRatio"] == "landscape"
    assert description["recipe"] == "launch"
    assert description["requestKey"] == "ab" * 32
    assert description["version"] == "0.1.0"
    assert description["prompt"] == PROV.prompt


def test_the_packet_is_stable_and_has_no_time() -> None:
    assert packet(PROV) == packet(replace(PROV))
    text = packet(PROV).decode()
    assert "Date" not in text and "date" not in text.lower()
    assert packet(replace(PROV, seed=1)) != packet(PROV)


def test_jpeg_packet_goes_after_jfif_and_exif() -> None:
    exif = Image.Exif()
    exif[0x010E] = "desc"
    data = _image("JPEG", exif=exif.tobytes())
    stamped = embed(data, PROV)
    assert stamped[2:4] == b"\xff\xe0"  # JFIF stays first
    jfif_end = 4 + int.from_bytes(stamped[4:6], "big")
    assert stamped[jfif_end + 4: jfif_end + 10] == b"Exif\x00\x00"  # then Exif
    assert strip(stamped) == data


def test_someone_elses_xmp_is_kept_and_ours_comes_first() -> None:
    theirs = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><other/></x:xmpmeta>'
    data = _image("JPEG", xmp=theirs)
    stamped = embed(data, PROV)
    assert theirs in stamped
    assert stamped.index(b"urn:flowpipe:xmp") < stamped.index(theirs)
    assert read_provenance(stamped) == PROV
    assert strip(stamped) == data
    assert read_provenance(data) is None  # someone else's packet is not flowpipe's


def test_a_long_odd_prompt_still_fits_one_jpeg_segment() -> None:
    prompt = ("<&>\x01\u2028 ünïcode " * 2000)[:10_000]
    stamped = embed(_image("JPEG"), replace(PROV, prompt=prompt))
    found = read_provenance(stamped)
    assert found is not None
    assert "\x01" not in found.prompt and "\ufffd" in found.prompt
    assert found.prompt_truncated or found.prompt == prompt.replace("\x01", "\ufffd")


def test_other_bytes_are_left_alone() -> None:
    assert embed(b"GIF89a....", PROV) == b"GIF89a...."
    assert read_provenance(b"GIF89a....") is None
    assert strip(b"\xff\xd8garbage") == b"\xff\xd8garbage"


def test_a_packet_with_a_doctype_is_not_read() -> None:
    stamped = embed(_image("PNG"), PROV)
    bomb = stamped.replace(b"<?xpacket begin", b"<!DOCTYPE x [<!ENTITY a 'b'>]><?xpacket begin")
    assert read_provenance(bomb) is None


def test_inspect_says_what_made_the_image_and_when_flowpipe_did_not(tmp_path: Path) -> None:
    made = tmp_path / "0.jpg"
    made.write_bytes(embed(_image("JPEG"), replace(PROV, image_sha256=sha256_hex(_image("JPEG")))))
    other = tmp_path / "photo.png"
    other.write_bytes(_image("PNG"))
    text = CliRunner().invoke(cli, ["inspect", str(made)])
    assert text.exit_code == 0, text.output
    for fact in ("made by flowpipe 0.1.0", TRAINED_ALGORITHMIC_MEDIA, "closeup[angle=side]",
                 "nano-banana", "1234", "landscape", "ab" * 32, "unchanged:    yes"):
        assert fact in text.stdout
    as_json = json.loads(CliRunner().invoke(cli, ["inspect", str(made), "--json"]).stdout)
    assert as_json["made_by_flowpipe"] is True
    assert as_json["provenance"]["prompt"] == PROV.prompt
    assert as_json["file_sha256"] == sha256_hex(made.read_bytes())
    assert as_json["image_sha256"] == sha256_hex(_image("JPEG"))
    plain = CliRunner().invoke(cli, ["inspect", str(other)])
    assert plain.exit_code == 0
    assert "not made by flowpipe" in plain.stdout
    missing = CliRunner().invoke(cli, ["inspect", str(tmp_path / "nope.jpg")])
    assert missing.exit_code == 1 and "cannot read" in missing.stderr


def test_a_changed_image_is_not_called_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "0.jpg"
    path.write_bytes(embed(_image("JPEG"), PROV))  # the packet names other bytes
    assert inspect_file(path).intact is False
