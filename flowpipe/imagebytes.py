"""What image bytes are: the one reading of JPEG, PNG and WebP bytes in flowpipe.

The API's answers, the cache's entries, the remote's objects, upload bodies, asset
files and the provenance packet all ask here, so no two parts disagree about what a
JPEG or a PNG is. Three questions, from cheap to thorough:

- ``signature``: what a file starts as (its magic bytes); enough to name an upload's
  type or to find where a packet goes;
- ``sniff_image``: whether bytes are a whole JPEG or PNG, start and end markers both
  there (a cut answer or a damaged cache entry is not);
- ``read_image``: a whole image whose header Pillow can read, with its size; bytes
  that carry the markers around garbage are caught where they arrive.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from flowpipe.dialects import ImageFormat

__all__ = [
    "JPEG_START",
    "PNG_START",
    "ImageInfo",
    "is_jpeg",
    "is_png",
    "mime_type",
    "read_image",
    "signature",
    "sniff_image",
]

JPEG_START = b"\xff\xd8\xff"  # SOI, then the first marker's 0xFF
JPEG_END = b"\xff\xd9"  # EOI
PNG_START = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk every PNG ends with

Signature = Literal["jpeg", "png", "webp"]


def signature(head: bytes) -> Signature | None:
    """``jpeg``, ``png`` or ``webp`` by a file's first bytes, else None; says nothing
    about whether the rest is there."""
    if head.startswith(JPEG_START):
        return "jpeg"
    if head.startswith(PNG_START):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def mime_type(head: bytes) -> str | None:
    """``image/jpeg``, ``image/png`` or ``image/webp`` by a file's first bytes."""
    kind = signature(head)
    return None if kind is None else f"image/{kind}"


def is_jpeg(data: bytes) -> bool:
    """SOI at the start and EOI at the end: the cheap check that catches truncation."""
    return len(data) >= 5 and data.startswith(JPEG_START) and data.endswith(JPEG_END)


def is_png(data: bytes) -> bool:
    """The PNG signature at the start and the IEND chunk at the end (catches truncation)."""
    return data.startswith(PNG_START) and data.endswith(PNG_END)


def sniff_image(data: bytes) -> ImageFormat | None:
    """``jpeg`` or ``png`` for whole image bytes, by their content; None otherwise."""
    if is_jpeg(data):
        return "jpeg"
    if is_png(data):
        return "png"
    return None


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """A whole image's format and size in pixels."""

    format: ImageFormat
    width: int
    height: int


def read_image(data: bytes) -> ImageInfo | None:
    """The format and size of a whole JPEG or PNG whose header Pillow reads; None for
    anything else (only the header is decoded: cheap at any size)."""
    kind = sniff_image(data)
    if kind is None:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=[kind.upper()]) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return ImageInfo(kind, width, height) if width > 0 and height > 0 else None
