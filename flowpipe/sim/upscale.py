"""``POST /images/upscale`` (2026-07): one generated image enlarged to 2k or 4k.

The id names the account (the one that made the image); the image must be a
generation of a model the dialect can upscale. The request goes through the same
gate as a generation (credits, captcha, quotas, capacity), holds its slot for a
latency drawn like a generation's, and answers ``{"encodedImage": ...}`` with a
JPEG whose long side is 2048 or 4096 pixels and whose shape is the source's.
"""

from __future__ import annotations

import asyncio
import base64

from aiohttp import web

from flowpipe.sim.bodies import Answer, error, json_response, unauthorized_reference
from flowpipe.sim.ids import parse_id
from flowpipe.sim.images import STATE, admit, find_account, read_body
from flowpipe.sim.render import RefImage, render_upscale
from flowpipe.sim.request import parse_upscale_body
from flowpipe.sim.state import unit

__all__ = ["handle_upscale"]


async def handle_upscale(request: web.Request) -> web.Response:
    """POST /images/upscale."""
    state = request.app[STATE]
    spoken, cfg = state.spoken, state.config
    media_id, resolution, captcha_retry = parse_upscale_body(await read_body(request), spoken)
    parts = parse_id(media_id)
    if parts is None:
        raise Answer(400, error(f"Invalid mediaGenerationId {media_id}"))
    email = find_account(state, parts.email)
    record = state.registry.get(media_id)
    if record is None or record.owner != email:
        raise Answer(403, unauthorized_reference(parts.user, media_id))
    if record.model is None:
        raise Answer(400, error("Only generated images can be upscaled"))
    if not spoken.models[record.model].upscalable:
        raise Answer(400, error(f"Model {record.model} does not support upscaling"))
    key = f"upscale:{record.sha256}:{resolution}"
    admit(state, email, model=None, key=key, captcha_retry=captcha_retry)
    latency = cfg.latency_min + (cfg.latency_max - cfg.latency_min) * unit(cfg.seed, key)
    source = RefImage(sha256=record.sha256, thumb=record.thumb)
    try:
        drawing = asyncio.get_running_loop().run_in_executor(
            state.renderer.pool, render_upscale, source, spoken.upscale_long_side[resolution],
            resolution, (record.width, record.height),
        )
        await asyncio.sleep(latency * cfg.time_scale)
        data = await drawing
    finally:
        state.release(refund=False, account=email)
    state.upscales += 1
    tries = captcha_retry or spoken.captcha_default
    body = {"encodedImage": base64.b64encode(data).decode("ascii"),
            "captcha": {"solved": True, "maxAttempts": tries}}
    return json_response(200, body)
