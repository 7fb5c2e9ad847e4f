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

And where flowpipe's own XMP packet sits in a file it wrote (``packet_span``), so the
image as the API made it (``strip_packet``, ``api_sha256``) can be told from the file
by every layer: the cache and the manifest, and the recipe's assets, which may be
flowpipe outputs (an asset is known by its API bytes, so its key outlives the packet).
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from flowpipe.dialects import ImageFormat

__all__ = [
    "JPEG_START",
    "NAMESPACE",
    "PNG_START",
    "PNG_XMP_KEYWORD",
    "XMP_HEADER",
    "ImageInfo",
    "api_sha256",
    "is_jpeg",
    "is_png",
    "jpeg_segments",
    "mime_type",
    "packet_span",
    "png_chunks",
    "read_image",
    "signature",
    "sniff_image",
    "strip_packet",
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
    from PIL import Image  # here: validating a recipe hashes assets but never decodes one

    try:
        with Image.open(io.BytesIO(data), formats=[kind.upper()]) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return ImageInfo(kind, width, height) if width > 0 and height > 0 else None


# -- flowpipe's own packet (flowpipe.store.provenance writes it) --------------------------

NAMESPACE = "urn:flowpipe:xmp:1.0/"
"""flowpipe's own XMP namespace (a URN: nothing to fetch)."""
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"  # what starts a JPEG's XMP APP1 segment
PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"  # the keyword of a PNG's XMP iTXt chunk


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end) of each marker segment before the scan data."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            return
        (length,) = struct.unpack(">H", data[pos + 2: pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return
        yield marker, pos, end
        pos = end


def png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk, up to and with IEND."""
    pos = len(PNG_START)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos: pos + 4])
        kind = data[pos + 4: pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end


def packet_span(data: bytes) -> tuple[int, int] | None:
    """Where flowpipe's packet sits (the whole segment or chunk), if anywhere."""
    marker = f'xmlns:flowpipe="{NAMESPACE}"'.encode()
    if data.startswith(JPEG_START):
        for marker_byte, start, end in jpeg_segments(data):
            body = data[start + 4: end]
            if marker_byte == 0xE1 and body.startswith(XMP_HEADER) and marker in body:
                return start, end
    elif data.startswith(PNG_START):
        for kind, start, end in png_chunks(data):
            body = data[start + 8: end - 4]
            if kind == b"iTXt" and body.startswith(PNG_XMP_KEYWORD + b"\x00") and marker in body:
                return start, end
    return None


def strip_packet(data: bytes) -> bytes:
    """The image as the API made it: ``data`` less flowpipe's packet (if it has one)."""
    span = packet_span(data)
    return data if span is None else data[: span[0]] + data[span[1]:]


def api_sha256(data: bytes) -> str:
    """SHA-256 of the image as the API made it: what manifests, locks, picks and keys use,
    and what an asset that flowpipe made is known by (so its key outlives the packet)."""
    return hashlib.sha256(strip_packet(data)).hexdigest()
