"""Turn 2xx bodies into typed results, or a ``ResponseError`` naming the bad field.

The API pages' shapes are checked field by field: JSON that does not parse, a wrong
type, a missing field, base64 that does not decode or bytes that are not a complete,
readable image (``flowpipe.imagebytes.read_image``: its size comes from its header)
all end here as ``ResponseError`` (retried once: a truncated or garbled answer is
usually transient, but each one was a billed generation). Nothing from json, base64
or Pillow escapes. JPEG and PNG are read in either dialect: the 2025-11 page speaks
of JPEG only, but refusing a PNG would only buy the same image again.

Both generation shapes are read, whichever the answer has: 2025-11's
``imagePanels[].generatedImages[]`` (bytes inline) and 2026-07's
``media[].image.generatedImage`` (bytes inline as ``encodedImage`` or behind a signed
``fifeUrl``, which the client downloads). Both shapes of the assets answer too.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flowpipe.api.models import (
    AccountInfo,
    GeneratedImage,
    ImageResult,
    UploadedAsset,
    UpscaledImage,
)
from flowpipe.errors import ResponseError
from flowpipe.imagebytes import ImageInfo, read_image, sniff_image

__all__ = [
    "ParsedGeneration",
    "PendingImage",
    "decode_json",
    "parse_account",
    "parse_accounts",
    "parse_generation",
    "parse_image_result",
    "parse_uploaded_asset",
    "parse_upscaled",
    "read_image_bytes",
    "strip_query",
]

HINT = "the API answered with a body its page does not document; retry, report it if it persists"



class _Bad(Exception):
    """Internal: a field is wrong; turned into ResponseError with the request summary."""


def _fail(request: str, message: str) -> ResponseError:
    return ResponseError(
        f"malformed response: {message}", reason=message, hint=HINT, request=request
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(body: bytes, *, request: str) -> Any:
    """Parse a body as strict JSON (no NaN/Infinity), or raise ``ResponseError``."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _fail(request, "the body is not valid JSON") from exc


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _get(doc: Any, key: str, where: str) -> Any:
    if not isinstance(doc, dict):
        raise _Bad(f"{where or 'body'}: expected an object, got {_kind(doc)}")
    if key not in doc:
        raise _Bad(f"{where}.{key} is missing".lstrip("."))
    return doc[key]


def _str(doc: Any, key: str, where: str, *, empty: bool = True) -> str:
    value = _get(doc, key, where)
    if not isinstance(value, str) or (not empty and not value):
        need = "a string" if empty else "a non-empty string"
        raise _Bad(f"{where}.{key}: expected {need}, got {_kind(value)}".lstrip("."))
    return value


def _int(doc: Any, key: str, where: str, *, minimum: int = 0) -> int:
    value = _get(doc, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _Bad(
            f"{where}.{key}: expected an integer >= {minimum}, got {_kind(value)}".lstrip(".")
        )
    return value


def _list(doc: Any, key: str, where: str) -> list[Any]:
    value = _get(doc, key, where)
    if not isinstance(value, list):
        raise _Bad(f"{where}.{key}: expected an array, got {_kind(value)}".lstrip("."))
    return value


def _media_id(doc: Any, where: str) -> str:
    return _str(
        _get(doc, "mediaGenerationId", where),
        "mediaGenerationId",
        f"{where}.mediaGenerationId".lstrip("."),
        empty=False,
    )


def read_image_bytes(data: bytes) -> ImageInfo | str:
    """The format and size of a complete, readable JPEG or PNG, or what is wrong with it."""
    kind = sniff_image(data)
    if kind is None:
        return "not a complete JPEG or PNG"
    info = read_image(data)
    return info if info is not None else f"not a readable {kind.upper()} image"


def _decode(encoded: str, where: str) -> tuple[bytes, ImageInfo]:
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except ValueError:
        raise _Bad(f"{where}: not valid base64") from None
    info = read_image_bytes(data)
    if isinstance(info, str):
        raise _Bad(f"{where}: the decoded bytes are {info}")
    return data, info


def strip_query(url: str) -> str:
    """A signed URL without its query (the signature): what may be kept or logged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class PendingImage:
    """One image of a generation answer; its bytes are inline, or behind ``fife_url``."""

    seed: int
    media_generation_id: str
    model_name_type: str
    prompt: str
    aspect_ratio: str
    data: bytes | None = field(default=None, repr=False)
    info: ImageInfo | None = None
    fife_url: str | None = field(default=None, repr=False)
    where: str = ""

    def complete(self, data: bytes, info: ImageInfo) -> GeneratedImage:
        """The finished image once its bytes are known and checked."""
        return GeneratedImage(
            data=data, seed=self.seed, media_generation_id=self.media_generation_id,
            model_name_type=self.model_name_type, prompt=self.prompt,
            aspect_ratio=self.aspect_ratio, format=info.format, width=info.width,
            height=info.height,
        )


@dataclass(frozen=True, slots=True)
class ParsedGeneration:
    """A checked generation answer; ``raw`` is its JSON less image bytes and signatures."""

    images: tuple[PendingImage, ...]
    raw: dict[str, Any]


def _panel_image(item: Any, where: str) -> tuple[PendingImage, dict[str, Any]]:
    data, info = _decode(_str(item, "encodedImage", where), f"{where}.encodedImage")
    image = PendingImage(
        seed=_int(item, "seed", where),
        media_generation_id=_media_id(item, where),
        model_name_type=_str(item, "modelNameType", where),
        prompt=_str(item, "prompt", where),
        aspect_ratio=_str(item, "aspectRatio", where),
        data=data,
        info=info,
        where=where,
    )
    return image, {k: v for k, v in item.items() if k != "encodedImage"}


def _panels(doc: Any) -> ParsedGeneration:
    images: list[PendingImage] = []
    panels: list[dict[str, Any]] = []
    for p, panel in enumerate(_list(doc, "imagePanels", "")):
        where = f"imagePanels[{p}]"
        raw_items: list[dict[str, Any]] = []
        for g, item in enumerate(_list(panel, "generatedImages", where)):
            image, raw_item = _panel_image(item, f"{where}.generatedImages[{g}]")
            images.append(image)
            raw_items.append(raw_item)
        panels.append({**panel, "generatedImages": raw_items})
    if not images:
        raise _Bad("imagePanels holds no generated images")
    return ParsedGeneration(images=tuple(images), raw={**doc, "imagePanels": panels})


def _any_media_id(doc: Any, where: str) -> str:
    """``mediaGenerationId`` as a string (2026) or as the page's nested object (2025)."""
    value = _get(doc, "mediaGenerationId", where)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        return _media_id(doc, where)
    raise _Bad(f"{where}.mediaGenerationId: expected a non-empty string, got {_kind(value)}"
               .lstrip("."))


def _optional_str(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise _Bad(f"{where}.{key}: expected a string, got {_kind(value)}")
    return value


def _media_image(item: Any, where: str) -> tuple[PendingImage, dict[str, Any]]:
    container = _get(item, "image", where)
    inner = f"{where}.image"
    generated = _get(container, "generatedImage", inner)
    inner = f"{inner}.generatedImage"
    if not isinstance(generated, dict):
        raise _Bad(f"{inner}: expected an object, got {_kind(generated)}")
    encoded, fife = generated.get("encodedImage"), generated.get("fifeUrl")
    data: bytes | None = None
    info: ImageInfo | None = None
    if isinstance(encoded, str) and encoded:
        data, info = _decode(encoded, f"{inner}.encodedImage")
    elif not (isinstance(fife, str) and fife):
        raise _Bad(f"{inner}: neither encodedImage nor fifeUrl")
    image = PendingImage(
        seed=_int(generated, "seed", inner),
        media_generation_id=_any_media_id(generated, inner),
        model_name_type=_optional_str(generated, "modelNameType", inner),
        prompt=_optional_str(generated, "prompt", inner),
        aspect_ratio=_optional_str(generated, "aspectRatio", inner),
        data=data,
        info=info,
        fife_url=None if data is not None else str(fife),
        where=inner,
    )
    kept = {k: v for k, v in generated.items() if k != "encodedImage"}
    if isinstance(fife, str):
        kept["fifeUrl"] = strip_query(fife)
    return image, {**item, "image": {**container, "generatedImage": kept}}


def _media(doc: Any) -> ParsedGeneration:
    images: list[PendingImage] = []
    raw_items: list[dict[str, Any]] = []
    for m, item in enumerate(_list(doc, "media", "")):
        image, raw_item = _media_image(item, f"media[{m}]")
        images.append(image)
        raw_items.append(raw_item)
    if not images:
        raise _Bad("media holds no generated images")
    return ParsedGeneration(images=tuple(images), raw={**doc, "media": raw_items})


def parse_generation(body: bytes, *, request: str) -> ParsedGeneration:
    """Parse a 200 from ``POST /images`` in either shape; inline images are checked.

    Images behind a ``fifeUrl`` come back with ``data`` None for the client to download.
    """
    doc = decode_json(body, request=request)
    try:
        if isinstance(doc, dict) and "imagePanels" not in doc and "media" in doc:
            return _media(doc)
        if isinstance(doc, dict) and "imagePanels" not in doc and "error" in doc:
            raise _Bad(f"a success status with an error: {str(doc['error'])[:200]}")
        return _panels(doc)
    except _Bad as exc:
        raise _fail(request, str(exc)) from None


def parse_image_result(body: bytes, *, request: str) -> ImageResult:
    """Parse a 200 from ``POST /images`` whose images are all inline (2025-11)."""
    parsed = parse_generation(body, request=request)
    images = []
    for image in parsed.images:
        if image.data is None or image.info is None:
            raise _fail(request, f"{image.where}: the image is not in the answer")
        images.append(image.complete(image.data, image.info))
    return ImageResult(images=tuple(images), raw=parsed.raw)


def _size(doc: Any, key: str) -> int | None:
    value = doc.get(key) if isinstance(doc, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def parse_uploaded_asset(body: bytes, *, request: str) -> UploadedAsset:
    """Parse a 200 from ``POST /assets/{email}``, in 2025-11's shape or 2026's ``media``.

    2025-11: ``{"mediaGenerationId": {"mediaGenerationId": ID}, "width", "height"}``.
    2026: ``{"media": {"name": ID, ...}}`` (a ``mediaGenerationId`` in it wins over the
    name); the size is read where present (top level, ``media`` or ``media.image``).
    """
    doc = decode_json(body, request=request)
    try:
        if isinstance(doc, dict) and "mediaGenerationId" not in doc and "media" in doc:
            media = _get(doc, "media", "")
            if isinstance(media, dict) and "mediaGenerationId" in media:
                media_id = _any_media_id(media, "media")
            else:
                media_id = _str(media, "name", "media", empty=False)
            holders = (doc, media, media.get("image"))
            width = next((w for h in holders if (w := _size(h, "width"))), None)
            height = next((v for h in holders if (v := _size(h, "height"))), None)
            return UploadedAsset(media_generation_id=media_id, width=width, height=height)
        return UploadedAsset(
            media_generation_id=_media_id(doc, ""),
            width=_int(doc, "width", "", minimum=1),
            height=_int(doc, "height", "", minimum=1),
        )
    except _Bad as exc:
        raise _fail(request, str(exc)) from None


def parse_upscaled(body: bytes, *, request: str, resolution: str) -> UpscaledImage:
    """Parse a 200 from ``POST /images/upscale``: ``{"encodedImage": ...}`` (and extras)."""
    doc = decode_json(body, request=request)
    try:
        data, info = _decode(_str(doc, "encodedImage", "", empty=False), "encodedImage")
        media_id = _any_media_id(doc, "") if "mediaGenerationId" in doc else None
    except _Bad as exc:
        raise _fail(request, str(exc)) from None
    raw = {k: v for k, v in doc.items() if k != "encodedImage"}
    return UpscaledImage(
        data=data, resolution=resolution, format=info.format, media_generation_id=media_id,
        raw=raw, width=info.width, height=info.height,
    )


def _account(email: str, value: Any) -> AccountInfo:
    health = _str(value, "health", f"[{email!r}]")
    return AccountInfo(email=email, health=health, raw=dict(value))


def parse_accounts(body: bytes, *, request: str) -> dict[str, AccountInfo]:
    """Parse ``GET /accounts``: an object keyed by account email."""
    doc = decode_json(body, request=request)
    try:
        if not isinstance(doc, dict):
            raise _Bad(f"body: expected an object keyed by email, got {_kind(doc)}")
        return {email: _account(email, value) for email, value in doc.items()}
    except _Bad as exc:
        raise _fail(request, str(exc)) from None


def parse_account(body: bytes, *, email: str, request: str) -> AccountInfo:
    """Parse ``GET /accounts/{email}``: the account's object, bare or keyed by its email."""
    doc = decode_json(body, request=request)
    try:
        if isinstance(doc, dict) and "health" not in doc and isinstance(doc.get(email), dict):
            doc = doc[email]
        return _account(email, doc)
    except _Bad as exc:
        raise _fail(request, str(exc)) from None
