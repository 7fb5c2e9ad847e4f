"""Turn 2xx bodies into typed results, or a ``ResponseError`` naming the bad field.

The API page's shapes are checked field by field: JSON that does not parse, a wrong
type, a missing field, base64 that does not decode or bytes that are not a JPEG all
end here as ``ResponseError`` (retryable: a truncated or garbled answer is usually
transient). Nothing from json or base64 escapes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from flowpipe.api.models import AccountInfo, GeneratedImage, ImageResult, UploadedAsset
from flowpipe.errors import ResponseError

__all__ = [
    "decode_json",
    "is_jpeg",
    "parse_account",
    "parse_accounts",
    "parse_image_result",
    "parse_uploaded_asset",
]

HINT = "the API answered with a body its page does not document; retry, report it if it persists"

_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"


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


def is_jpeg(data: bytes) -> bool:
    """SOI at the start and EOI at the end: the cheap check that catches truncation."""
    return len(data) >= 4 and data.startswith(_JPEG_SOI) and data.endswith(_JPEG_EOI)


def _jpeg(encoded: str, where: str) -> bytes:
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
    except ValueError:
        raise _Bad(f"{where}: not valid base64") from None
    if not is_jpeg(data):
        raise _Bad(f"{where}: the decoded bytes are not a complete JPEG")
    return data


def _image(item: Any, where: str) -> tuple[GeneratedImage, dict[str, Any]]:
    data = _jpeg(_str(item, "encodedImage", where), f"{where}.encodedImage")
    image = GeneratedImage(
        data=data,
        seed=_int(item, "seed", where),
        media_generation_id=_media_id(item, where),
        model_name_type=_str(item, "modelNameType", where),
        prompt=_str(item, "prompt", where),
        aspect_ratio=_str(item, "aspectRatio", where),
    )
    return image, {k: v for k, v in item.items() if k != "encodedImage"}


def _images(doc: Any) -> ImageResult:
    if isinstance(doc, dict) and "imagePanels" not in doc and "error" in doc:
        raise _Bad(f"a success status with an error: {str(doc['error'])[:200]}")
    images: list[GeneratedImage] = []
    panels: list[dict[str, Any]] = []
    for p, panel in enumerate(_list(doc, "imagePanels", "")):
        where = f"imagePanels[{p}]"
        raw_items: list[dict[str, Any]] = []
        for g, item in enumerate(_list(panel, "generatedImages", where)):
            image, raw_item = _image(item, f"{where}.generatedImages[{g}]")
            images.append(image)
            raw_items.append(raw_item)
        panels.append({**panel, "generatedImages": raw_items})
    if not images:
        raise _Bad("imagePanels holds no generated images")
    return ImageResult(images=tuple(images), raw={**doc, "imagePanels": panels})


def parse_image_result(body: bytes, *, request: str) -> ImageResult:
    """Parse a 200 from ``POST /images``; every image is decoded and checked."""
    doc = decode_json(body, request=request)
    try:
        return _images(doc)
    except _Bad as exc:
        raise _fail(request, str(exc)) from None


def parse_uploaded_asset(body: bytes, *, request: str) -> UploadedAsset:
    """Parse a 200 from ``POST /assets/{email}``."""
    doc = decode_json(body, request=request)
    try:
        return UploadedAsset(
            media_generation_id=_media_id(doc, ""),
            width=_int(doc, "width", "", minimum=1),
            height=_int(doc, "height", "", minimum=1),
        )
    except _Bad as exc:
        raise _fail(request, str(exc)) from None


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
