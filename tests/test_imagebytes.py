"""One reading of image bytes for every part: signatures, whole images, readable headers."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from flowpipe.imagebytes import ImageInfo, mime_type, read_image, signature, sniff_image


def _encoded(kind: str, size: tuple[int, int] = (16, 9)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, kind)
    return buffer.getvalue()


JPEG, PNG, WEBP = _encoded("JPEG"), _encoded("PNG"), _encoded("WEBP")


@pytest.mark.parametrize(
    ("data", "kind"),
    [(JPEG, "jpeg"), (PNG, "png"), (WEBP, "webp"), (b"GIF89a", None), (b"", None)],
    ids=["jpeg", "png", "webp", "gif", "empty"],
)
def test_signature_names_what_a_file_starts_as(data: bytes, kind: str | None) -> None:
    assert signature(data[:12]) == kind
    assert mime_type(data[:12]) == (None if kind is None else f"image/{kind}")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(JPEG, "jpeg", id="jpeg"),
        pytest.param(PNG, "png", id="png"),
        pytest.param(JPEG[:-10], None, id="cut-jpeg"),
        pytest.param(PNG[:-5], None, id="cut-png"),
        pytest.param(JPEG + b"\x00\x00", None, id="jpeg-with-trailing-nuls"),
        pytest.param(b"\xff\xd8" + JPEG[3:], None, id="soi-without-a-marker"),
        pytest.param(WEBP, None, id="webp-is-not-an-answer"),
    ],
)
def test_a_whole_image_has_both_ends(data: bytes, kind: str | None) -> None:
    assert sniff_image(data) == kind


def test_read_image_gives_the_size_of_a_readable_image() -> None:
    assert read_image(_encoded("JPEG", (40, 30))) == ImageInfo("jpeg", 40, 30)
    assert read_image(_encoded("PNG", (7, 11))) == ImageInfo("png", 7, 11)


def test_markers_around_garbage_are_not_an_image() -> None:
    garbled = b"\xff\xd8\xff" + b"\x00garbage" * 10 + b"\xff\xd9"
    assert sniff_image(garbled) == "jpeg"  # the cheap check cannot tell
    assert read_image(garbled) is None
    assert read_image(b"\x89PNG\r\n\x1a\n" + b"junk" + b"\x00\x00\x00\x00IEND\xaeB`\x82") is None
