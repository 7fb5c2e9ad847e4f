"""Provenance in every output image: an XMP packet that says flowpipe made it, and how.

The packet carries IPTC ``DigitalSourceType`` = trainedAlgorithmicMedia (the IPTC
NewsCodes URI), the prompt, model, seed, aspect ratio, recipe name, node id, image
index, request key, the SHA-256 of the image as the API made it, and the flowpipe
version. It goes into a JPEG as an APP1 XMP segment (after the JFIF/Exif segments) and
into a PNG as an ``iTXt`` chunk with the keyword ``XML:com.adobe.xmp`` (after IHDR);
Pillow's ``Image.getxmp()`` and exiftool read both.

Three rules keep runs reproducible (docs/outputs.md):

- the pixels and every other byte are the API's: ``strip(embed(data, p)) == data``,
  so the cache keeps the API's bytes and keys hash them, and ``api_sha256(file)``
  recovers the hash that the manifest, the lock and picks record;
- nothing in the packet depends on time or place, so equal inputs give equal files
  (with the same flowpipe: the packet names its version);
- an image that already carries someone else's XMP keeps it; ours comes first.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

from flowpipe.errors import OutputError
from flowpipe.imagebytes import (
    JPEG_START,
    NAMESPACE,
    PNG_START,
    PNG_XMP_KEYWORD,
    XMP_HEADER,
    api_sha256,
    jpeg_segments,
    packet_span,
    png_chunks,
    signature,
)
from flowpipe.imagebytes import strip_packet as strip
from flowpipe.store.responses import sha256_hex

__all__ = [
    "NAMESPACE",
    "TRAINED_ALGORITHMIC_MEDIA",
    "Inspection",
    "Provenance",
    "api_sha256",
    "embed",
    "inspect_file",
    "packet",
    "read_provenance",
    "strip",
]

TRAINED_ALGORITHMIC_MEDIA = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
)

_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_JPEG_MAX_SEGMENT = 0xFFFF - 2 - len(XMP_HEADER)  # the length field counts itself
_PROMPT_ROOM = 48_000  # bytes of escaped prompt that keep a packet inside one segment


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """How one output image was made: what the packet says, field by field."""

    recipe: str
    node: str
    image: int
    prompt: str
    model: str
    seed: int | None
    aspect_ratio: str
    request_key: str
    image_sha256: str  # of the image as the API made it, without this packet
    flowpipe_version: str
    backend: str = ""
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA
    prompt_truncated: bool = False

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_ATTRS = (  # (field, XMP property in flowpipe's namespace), in the packet's order
    ("recipe", "recipe"), ("node", "node"), ("image", "image"), ("model", "model"),
    ("seed", "seed"), ("aspect_ratio", "aspectRatio"), ("request_key", "requestKey"),
    ("image_sha256", "imageSha256"), ("backend", "backend"),
    ("flowpipe_version", "version"),
)


def _xml_text(text: str) -> str:
    """Characters XML 1.0 cannot hold become U+FFFD (a prompt may hold anything)."""
    return "".join(
        c if c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD
        or 0x10000 <= ord(c) <= 0x10FFFF else "\ufffd"
        for c in text
    )


def packet(p: Provenance) -> bytes:
    """The XMP packet for ``p``: stable bytes (no time, no padding)."""
    prompt, truncated = _xml_text(p.prompt), p.prompt_truncated
    while len(escape(prompt).encode("utf-8")) > _PROMPT_ROOM:  # 10,000 chars fit; be safe
        prompt, truncated = prompt[: len(prompt) * 3 // 4], True
    values = {name: "" if getattr(p, name) is None else str(getattr(p, name))
              for name, _ in _ATTRS}
    attrs = "".join(
        f"\n    flowpipe:{prop}={quoteattr(_xml_text(values[name]))}" for name, prop in _ATTRS
    )
    if truncated:
        attrs += '\n    flowpipe:promptTruncated="true"'
    tool = _xml_text(f"flowpipe {p.flowpipe_version}")
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk={quoteattr(tool)}>\n'
        f' <rdf:RDF xmlns:rdf="{_RDF}">\n'
        '  <rdf:Description rdf:about=""\n'
        f'    xmlns:Iptc4xmpExt="{_IPTC_EXT}"\n'
        f'    xmlns:flowpipe="{NAMESPACE}"\n'
        f"    Iptc4xmpExt:DigitalSourceType={quoteattr(_xml_text(p.digital_source_type))}"
        f"{attrs}>\n"
        f"   <flowpipe:prompt>{escape(prompt)}</flowpipe:prompt>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )
    return text.encode("utf-8")


def embed(data: bytes, p: Provenance) -> bytes:
    """``data`` (a JPEG or PNG) with ``p``'s packet added; any other bytes unchanged."""
    xmp = packet(p)
    if data.startswith(JPEG_START):
        at = _jpeg_insert_at(data)
        if at is None or len(xmp) > _JPEG_MAX_SEGMENT:
            return data
        segment = b"\xff\xe1" + struct.pack(">H", 2 + len(XMP_HEADER) + len(xmp))
        return data[:at] + segment + XMP_HEADER + xmp + data[at:]
    if data.startswith(PNG_START):
        chunks = list(png_chunks(data))
        if not chunks or chunks[0][0] != b"IHDR":
            return data
        body = PNG_XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + xmp  # no compression, no language
        chunk = _png_chunk(b"iTXt", body)
        at = chunks[0][2]
        return data[:at] + chunk + data[at:]
    return data


def read_provenance(data: bytes) -> Provenance | None:
    """flowpipe's packet in ``data``, or None when flowpipe did not make the file."""
    span = packet_span(data)
    if span is None:
        return None
    xmp = _packet_of(data, span)
    if xmp is None or b"<!DOCTYPE" in xmp or b"<!ENTITY" in xmp:  # no entities, no bombs
        return None
    try:
        root = ElementTree.fromstring(xmp)  # noqa: S314 - no DTD, so no entity expansion
    except ElementTree.ParseError:
        return None
    desc = root.find(f".//{{{_RDF}}}Description")
    if desc is None:
        return None
    return _from_description(desc)


def _from_description(desc: ElementTree.Element) -> Provenance | None:
    got: Mapping[str, str] = {
        key.removeprefix(f"{{{NAMESPACE}}}"): value
        for key, value in desc.attrib.items() if key.startswith(f"{{{NAMESPACE}}}")
    }
    prompt = desc.findtext(f"{{{NAMESPACE}}}prompt") or ""
    try:
        return Provenance(
            recipe=got.get("recipe", ""), node=got.get("node", ""),
            image=int(got.get("image", "0")), prompt=prompt, model=got.get("model", ""),
            seed=int(got["seed"]) if got.get("seed") else None,
            aspect_ratio=got.get("aspectRatio", ""), request_key=got.get("requestKey", ""),
            image_sha256=got.get("imageSha256", ""), backend=got.get("backend", ""),
            flowpipe_version=got.get("version", ""),
            digital_source_type=desc.get(f"{{{_IPTC_EXT}}}DigitalSourceType", ""),
            prompt_truncated=got.get("promptTruncated") == "true",
        )
    except ValueError:
        return None


# -- JPEG ----------------------------------------------------------------------------------


def _jpeg_insert_at(data: bytes) -> int | None:
    """After SOI and any leading APP0 (JFIF) and Exif APP1 segments."""
    at = 2
    for marker, start, end in jpeg_segments(data):
        if marker == 0xE0 or (marker == 0xE1 and data[start + 4: start + 10] == b"Exif\x00\x00"):
            at = end
            continue
        return start
    return at if len(data) > at else None


# -- PNG -----------------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


# -- finding our packet --------------------------------------------------------------------


def _packet_of(data: bytes, span: tuple[int, int]) -> bytes | None:
    start, end = span
    if data.startswith(JPEG_START):
        return data[start + 4 + len(XMP_HEADER): end]
    rest = data[start + 8 + len(PNG_XMP_KEYWORD) + 1: end - 4]  # after "keyword\0"
    if rest[:2] != b"\x00\x00":  # compressed: flowpipe never writes that
        return None
    language_end = rest.find(b"\x00", 2)
    translated_end = rest.find(b"\x00", language_end + 1) if language_end >= 0 else -1
    return None if translated_end < 0 else rest[translated_end + 1:]


@dataclass(frozen=True, slots=True)
class Inspection:
    """What ``flowpipe inspect`` says about one file."""

    path: str
    format: str  # "jpeg", "png" or "other"
    file_sha256: str
    image_sha256: str  # the file less flowpipe's packet: the API's bytes
    provenance: Provenance | None

    @property
    def intact(self) -> bool | None:
        """Whether the image is still the one the packet names (None: no packet)."""
        if self.provenance is None:
            return None
        return self.provenance.image_sha256 == self.image_sha256

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "made_by_flowpipe": self.provenance is not None,
            "format": self.format,
            "file_sha256": self.file_sha256,
            "image_sha256": self.image_sha256,
            "intact": self.intact,
            "provenance": None if self.provenance is None else self.provenance.as_dict(),
        }

    def lines(self) -> list[str]:
        """The text report, one fact a line."""
        if self.provenance is None:
            return [f"{self.path}: not made by flowpipe (no flowpipe provenance packet)",
                    f"file sha256:  {self.file_sha256}"]
        p = self.provenance
        intact = "yes" if self.intact else "NO: the image was changed after flowpipe wrote it"
        return [
            f"{self.path}: made by flowpipe {p.flowpipe_version}",
            f"source type:  {p.digital_source_type}",
            f"recipe:       {p.recipe}",
            f"node:         {p.node}  (image {p.image})",
            f"model:        {p.model}",
            f"seed:         {'—' if p.seed is None else p.seed}",
            f"aspect ratio: {p.aspect_ratio}",
            f"backend:      {p.backend or '—'}",
            f"request key:  {p.request_key}",
            f"image sha256: {self.image_sha256}  (as the API made it; picks and locks use it)",
            f"file sha256:  {self.file_sha256}  (what sha256sum prints)",
            f"unchanged:    {intact}",
            "prompt" + (" (truncated):" if p.prompt_truncated else ":"),
            *(f"  {line}" for line in p.prompt.splitlines() or [""]),
        ]


def inspect_file(path: Path) -> Inspection:
    """Read ``path`` and say what its provenance packet holds (OutputError if unreadable)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OutputError(f"cannot read {path}: {exc.strerror or exc}") from None
    found = signature(data)
    kind = found if found in ("jpeg", "png") else "other"
    return Inspection(str(path), kind, sha256_hex(data), api_sha256(data), read_provenance(data))
