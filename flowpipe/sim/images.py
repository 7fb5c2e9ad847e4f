"""``POST /images``: validate, pick the account, admit under C(t), wait, answer.

Checks run in the order a client would want to learn about them: body (400),
account (404, 596), references (403), credits (402), capacity (429/503, at once),
then the generation itself: latency, moderation (400 UNSAFE / 500) or images, and
injected faults (a reset connection or a truncated body) instead of an answer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import socket
import struct
from typing import Any

from aiohttp import web

from flowpipe.sim.bodies import (
    MODERATED_500,
    REJECTED_429,
    REJECTED_503,
    SESSION_596,
    UNSAFE_400,
    Answer,
    account_not_found,
    error,
    json_response,
    no_credits,
    unauthorized_reference,
)
from flowpipe.sim.ids import MediaRecord, parse_id
from flowpipe.sim.render import RefImage, Rendered, RenderSpec
from flowpipe.sim.request import ImagesRequest, parse_images_body
from flowpipe.sim.state import Decision, SimState

__all__ = ["FAULT_KEY", "STATE", "find_account", "handle_images"]

STATE = web.AppKey("flowpipe_sim_state", SimState)
FAULT_KEY = web.RequestKey("flowpipe_sim_fault", str)

MODEL_NAME_TYPES = {"imagen-4": "IMAGEN_3_5", "nano-banana": "GEM_PIX"}


def find_account(state: SimState, email: str) -> str:
    """The configured spelling of ``email``; 404 if unknown, 596 if broken."""
    wanted = email.lower()
    for known in state.config.all_accounts:
        if known.lower() == wanted:
            if known in state.config.broken_accounts:
                raise Answer(596, SESSION_596)
            return known
    raise Answer(404, account_not_found(email))


async def _read_body(request: web.Request) -> dict[str, object]:
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.post()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Answer(400, error("Invalid JSON body")) from None
    if not isinstance(data, dict):
        raise Answer(400, error("Request body must be a JSON object"))
    return data


def _resolve(state: SimState, req: ImagesRequest) -> tuple[str, list[MediaRecord]]:
    """The executing account and the records of the references, per the page's rules."""
    parsed = []
    for ref in req.references:
        parts = parse_id(ref)
        if parts is None:
            raise Answer(400, error(f"Invalid mediaGenerationId {ref}"))
        parsed.append(parts)
    accounts = state.config.all_accounts
    if req.email is not None:
        email = req.email
    elif parsed:
        email = parsed[0].email  # the account where the first reference was made
    elif len(accounts) == 1:
        email = accounts[0]
    else:
        raise Answer(400, error("email is required when more than one account is configured"))
    email = find_account(state, email)
    records = []
    for ref, parts in zip(req.references, parsed, strict=True):
        record = state.registry.get(ref)
        if record is None or record.owner != email:
            raise Answer(403, unauthorized_reference(parts.user, ref))
        records.append(record)
    return email, records


def _render_all(state: SimState, spec: RenderSpec, count: int) -> list[Rendered]:
    return [state.renderer.render(spec, index) for index in range(count)]


def _panel(
    state: SimState, req: ImagesRequest, email: str, seed: int, rendered: list[Rendered]
) -> dict[str, Any]:
    """The 200 body; registers a new mediaGenerationId per image for ``email``."""
    name_type = MODEL_NAME_TYPES[req.model]
    if req.model == "imagen-4" and req.references:
        name_type = "R2I"
    workflow = hashlib.sha256(f"{state.config.seed}:{state.generations}".encode()).hexdigest()
    inputs = [{"mediaGenerationId": ref} for ref in req.references]
    images = []
    for image in rendered:
        media_id = state.registry.register(
            MediaRecord(owner=email, sha256=image.sha256, thumb=image.thumb)
        )
        images.append(
            {
                "encodedImage": base64.b64encode(image.jpeg).decode("ascii"),
                "seed": seed,
                "mediaGenerationId": {"mediaGenerationId": media_id},
                "prompt": req.prompt,
                "modelNameType": name_type,
                "workflowId": f"workflow_{workflow[:16]}",
                "aspectRatio": f"IMAGE_ASPECT_RATIO_{req.aspect_ratio.upper()}",
                "requestData": {
                    "promptInputs": [{"textInput": req.prompt}],
                    "imageGenerationRequestData": {"imageGenerationImageInputs": inputs},
                },
            }
        )
    return {"imagePanels": [{"prompt": req.prompt, "generatedImages": images}]}


def _reset_connection(request: web.Request) -> None:
    """Drop the connection with a TCP reset and no answer."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _truncate(request: web.Request, body: bytes) -> None:
    """Send a 200 that declares the full length, half the body, then close."""
    transport = request.transport
    if transport is None:
        return
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    transport.write(head.encode("ascii") + body[: len(body) // 2])
    transport.close()


async def handle_images(request: web.Request) -> web.StreamResponse:
    """POST /images."""
    state = request.app[STATE]
    cfg = state.config
    req = parse_images_body(await _read_body(request))
    email, records = _resolve(state, req)
    if state.credits_left() == 0:
        raise Answer(402, no_credits())
    seed = req.seed if req.seed is not None else state.pick_seed()
    if not state.try_admit(email):
        status = state.reject_status()
        raise Answer(status, REJECTED_429 if status == 429 else REJECTED_503)

    refs = tuple(RefImage(sha256=r.sha256, thumb=r.thumb) for r in records)
    content = {
        "prompt": req.prompt,
        "model": req.model,
        "aspectRatio": req.aspect_ratio,
        "count": req.count,
        "seed": seed,
        "refs": [r.sha256 for r in refs],
        "style": req.style_reference is not None,
    }
    marker = re.search(rf"\b{re.escape(cfg.moderation_word)}\b", req.prompt, re.IGNORECASE)
    decision = state.decide(
        content, marker=marker is not None, nano_plain=req.model == "nano-banana" and not refs
    )
    return await _generate(
        request, state, req=req, email=email, seed=seed, refs=refs, decision=decision
    )


async def _generate(
    request: web.Request,
    state: SimState,
    *,
    req: ImagesRequest,
    email: str,
    seed: int,
    refs: tuple[RefImage, ...],
    decision: Decision,
) -> web.StreamResponse:
    """Hold the slot for the latency, then answer (or fail the connection)."""
    scale = state.config.time_scale
    success = decision.outcome == "ok" and decision.fault is None
    try:
        if decision.fault == "reset":
            await asyncio.sleep(decision.latency * decision.fault_at * scale)
            request[FAULT_KEY] = "reset"
            _reset_connection(request)
            return web.Response()
        rendering = None
        if decision.outcome == "ok":
            spec = RenderSpec(req.prompt, req.model, req.aspect_ratio, seed, refs)
            rendering = asyncio.get_running_loop().run_in_executor(
                state.renderer.pool, _render_all, state, spec, req.count
            )
        await asyncio.sleep(decision.latency * scale)
    finally:
        state.release(email, refund=not success)
    if decision.outcome == "unsafe":
        raise Answer(400, UNSAFE_400)
    if decision.outcome == "moderated":
        raise Answer(500, MODERATED_500)
    assert rendering is not None
    body = _panel(state, req, email, seed, await rendering)
    if decision.fault == "truncated":
        request[FAULT_KEY] = "truncated"
        _truncate(request, json.dumps(body).encode())
        return web.Response()
    state.record_success(decision.latency, req.count)
    return json_response(200, body)
