"""``POST /assets/{email}``: raw image bytes in, a mediaGenerationId out.

The body is read in chunks so a file over 20 MB gets the API's 400 rather than the
web framework's 413, and the rest of it is drained so the client reads the answer.
2025-11 takes PNG and JPEG and answers ``{"mediaGenerationId": {...}, "width",
"height"}``; 2026-07 takes WebP too and answers in its ``media`` shape. Uploads are
counted per account, and so are uploads of bytes the same account generated (a client
should reference those by id instead).
"""

from __future__ import annotations

import asyncio
import hashlib
import io

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from flowpipe.sim.bodies import Answer, error, json_response
from flowpipe.sim.ids import MediaRecord
from flowpipe.sim.images import STATE, find_account
from flowpipe.sim.render import make_thumb

__all__ = ["MAX_UPLOAD_BYTES", "handle_upload"]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_DRAIN_LIMIT = 512 * 1024 * 1024
_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


async def _read_limited(request: web.Request) -> bytes | None:
    """The body, or None if it is over the limit (the rest is read and dropped)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(1 << 20):
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            while size < _DRAIN_LIMIT and (rest := await request.content.read(1 << 20)):
                size += len(rest)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _inspect(data: bytes, expected: str) -> tuple[int, int, bytes]:
    """Width, height and thumbnail, or 400 if the bytes are not that kind of image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != expected:
                raise Answer(400, error(f"File content is not {expected}"))
            image.load()
            return image.width, image.height, make_thumb(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise Answer(400, error("File is not a valid image")) from None


async def handle_upload(request: web.Request) -> web.Response:
    """POST /assets/{email}."""
    state = request.app[STATE]
    email = find_account(state, request.match_info["email"])
    content_type = request.content_type.lower()
    types = state.spoken.upload_types
    if content_type not in types:
        await _read_limited(request)
        raise Answer(
            400,
            error(f"Unsupported Content-Type {content_type}: use {' or '.join(types)}"),
        )
    data = await _read_limited(request)
    if data is None:
        raise Answer(400, error("File is too large: the maximum is 20 MB"))
    if not data:
        raise Answer(400, error("File is empty"))
    width, height, thumb = await asyncio.to_thread(_inspect, data, _FORMATS[content_type])
    sha = hashlib.sha256(data).hexdigest()
    media_id = state.registry.register_upload(
        MediaRecord(owner=email, sha256=sha, thumb=thumb, width=width, height=height)
    )
    state.note_upload(sha, email)
    body: dict[str, object] = {
        "mediaGenerationId": {"mediaGenerationId": media_id}, "width": width, "height": height
    }
    if state.spoken.response_shape == "media":
        body = {"media": {"name": media_id, "image": {"width": width, "height": height}}}
    return json_response(200, body)
