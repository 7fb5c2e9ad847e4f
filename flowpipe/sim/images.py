"""``POST /images``: validate, pick the account, admit under C(t), wait, answer.

Checks run in the order a client would want to learn about them: body (400),
account (404, 596), references (403), credits (402), then in 2026-07 the captcha
(403 ``captcha_quality:``) and the quotas (429 with a reason), capacity (429/503, at
once), then the generation itself: latency, moderation (400 UNSAFE / 500) or images,
and injected faults (a reset connection or a truncated body) instead of an answer.

The answer has the dialect's shape: 2025-11's ``imagePanels`` with every JPEG inline,
or 2026-07's ``media`` with a signed ``fifeUrl`` per image (served by ``handle_fife``),
``encodedImage`` on some of them and PNG bytes for some, both chosen by hash.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import re
import socket
import struct
from typing import Any

from aiohttp import web

from flowpipe.dialects import NO_ELIGIBLE_ACCOUNT
from flowpipe.sim.bodies import (
    MODERATED_500,
    REJECTED_503,
    SESSION_596,
    UNSAFE_400,
    Answer,
    account_not_found,
    captcha_refused,
    error,
    json_response,
    no_credits,
    no_eligible_account,
    rejected_429,
    unauthorized_reference,
)
from flowpipe.sim.fife import FifeEntry
from flowpipe.sim.ids import MediaRecord, parse_id
from flowpipe.sim.quotas import Refusal
from flowpipe.sim.render import RefImage, Rendered, RenderSpec, as_png
from flowpipe.sim.request import ImagesRequest, parse_images_body
from flowpipe.sim.state import Decision, SimState, unit

__all__ = [
    "FAULT_KEY",
    "STATE",
    "admit",
    "find_account",
    "handle_fife",
    "handle_images",
    "read_body",
]

STATE = web.AppKey("flowpipe_sim_state", SimState)
FAULT_KEY = web.RequestKey("flowpipe_sim_fault", str)


def find_account(state: SimState, email: str) -> str:
    """The configured spelling of ``email``; 404 if unknown, 596 if broken."""
    wanted = email.lower()
    for known in state.config.all_accounts:
        if known.lower() == wanted:
            if known in state.config.broken_accounts:
                raise Answer(596, SESSION_596)
            return known
    raise Answer(404, account_not_found(email))


async def read_body(request: web.Request) -> dict[str, object]:
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
    elif state.spoken.email_required_with_many_accounts:
        raise Answer(400, error("email is required when more than one account is configured"))
    else:  # 2026-07 balances over the accounts that are not out
        usable = tuple(a for a in state.config.accounts if a not in state.config.broken_accounts)
        picked = state.quotas.pick(usable, req.model, state.now())
        if isinstance(picked, Refusal):
            raise _quota_answer(state, picked)
        email = picked
    email = find_account(state, email)
    records = []
    for ref, parts in zip(req.references, parsed, strict=True):
        record = state.registry.get(ref)
        if record is None or record.owner != email:
            raise Answer(403, unauthorized_reference(parts.user, ref))
        records.append(record)
    return email, records


def _quota_answer(state: SimState, refusal: Refusal) -> Answer:
    """The 429 for a quota reason; ``no_eligible_account`` says how long in Retry-After."""
    state.rate_limited[refusal.reason] += 1
    if refusal.reason == NO_ELIGIBLE_ACCOUNT:
        seconds = max(1, math.ceil(refusal.retry_after))
        return Answer(429, no_eligible_account(seconds), {"Retry-After": str(seconds)})
    return Answer(429, rejected_429(refusal.reason))


def admit(
    state: SimState, email: str, *, model: str | None, key: str, captcha_retry: int | None
) -> None:
    """Credits, captcha, quotas and capacity, in that order; raises the first refusal.

    On return the request holds a capacity slot (and a credit): ``state.release`` it.
    """
    if state.credits_left() == 0:
        raise Answer(402, no_credits())
    if state.captcha_refused(key, captcha_retry):
        raise Answer(403, captcha_refused(captcha_retry or state.spoken.captcha_default))
    if state.spoken.rate_reasons:
        refusal = state.quotas.refusal(email, model, state.now(), state.wall())
        if refusal is not None:
            raise _quota_answer(state, refusal)
    if not state.try_admit(email):
        status = state.reject_status()
        if status == 429:
            state.rate_limited["capacity"] += 1
        raise Answer(status, rejected_429(state.spoken.capacity_reason) if status == 429
                     else REJECTED_503)


def _render_all(
    state: SimState, spec: RenderSpec, count: int, png: tuple[bool, ...]
) -> list[tuple[Rendered, bytes]]:
    """Each image, and the bytes to send for it (the JPEG, or the same picture as PNG)."""
    images = [state.renderer.render(spec, index) for index in range(count)]
    return [(image, as_png(image.jpeg) if png[i] else image.jpeg) for i, image in enumerate(images)]


def _register(
    state: SimState, email: str, model: str, image: Rendered, data: bytes
) -> str:
    """A new mediaGenerationId for ``email``, remembering what it is and who made it."""
    sha = image.sha256 if data is image.jpeg else hashlib.sha256(data).hexdigest()
    state.note_made(sha, email)
    return state.registry.register(MediaRecord(
        owner=email, sha256=sha, thumb=image.thumb, width=image.width, height=image.height,
        model=model,
    ))


def _name_type(state: SimState, req: ImagesRequest) -> str:
    facts = state.spoken.models[req.model]
    return (facts.name_type_refs or facts.name_type) if req.references else facts.name_type


def _panel(
    state: SimState, req: ImagesRequest, *, request: web.Request, email: str, seed: int,
    spec: RenderSpec, rendered: list[tuple[Rendered, bytes]],
) -> dict[str, Any]:
    """The 2025-11 200 body; registers a new mediaGenerationId per image for ``email``."""
    name_type = _name_type(state, req)
    workflow = hashlib.sha256(f"{state.config.seed}:{state.generations}".encode()).hexdigest()
    inputs = [{"mediaGenerationId": ref} for ref in req.references]
    images = []
    for image, data in rendered:
        media_id = _register(state, email, req.model, image, data)
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


def _media(
    state: SimState, req: ImagesRequest, *, request: web.Request, email: str, seed: int,
    spec: RenderSpec, rendered: list[tuple[Rendered, bytes]],
) -> dict[str, Any]:
    """The 2026-07 200 body: ``media[]`` with a signed URL per image, some bytes inline."""
    cfg = state.config
    workflow = hashlib.sha256(f"{cfg.seed}:{state.generations}".encode()).hexdigest()[:16]
    origin = f"{request.scheme}://{request.host}"
    now = state.now()
    made = state.made_again(spec.cache_key())  # how often this request was made before
    ratio = req.aspect_ratio.replace(":", "_").upper()
    media = []
    for index, (image, data) in enumerate(rendered):
        media_id = _register(state, email, req.model, image, data)
        png = data is not image.jpeg
        stale = unit(cfg.seed, "fife-expired", *spec.cache_key(), index, made)
        expires = now - 1.0 if stale < cfg.fife_expired_rate else now + cfg.fife_ttl
        generated: dict[str, Any] = {
            "seed": seed,
            "mediaGenerationId": media_id,
            "prompt": req.prompt,
            "modelNameType": _name_type(state, req),
            "aspectRatio": f"IMAGE_ASPECT_RATIO_{ratio}",
            "fifeUrl": state.fife.issue(origin, FifeEntry(spec, index, png, expires)),
        }
        if unit(cfg.seed, "inline", *spec.cache_key(), index) < cfg.encoded_image_rate:
            generated["encodedImage"] = base64.b64encode(data).decode("ascii")
        media.append({"name": f"media_{media_id[-12:]}", "workflowId": f"workflow_{workflow}",
                      "image": {"generatedImage": generated}})
    return {"jobId": f"job_{workflow}", "media": media}


_ANSWERS = {"imagePanels": _panel, "media": _media}  # by the dialect's response shape


async def handle_fife(request: web.Request) -> web.Response:
    """GET a signed image URL: the bytes, or 403 when it is tampered with or expired."""
    state = request.app[STATE]
    entry, why = state.fife.check(request, state.now())
    if entry is None:
        state.fife_reads[why] += 1
        status = 404 if why == "unknown" else 403
        return web.Response(status=status, text=f"signed URL {why}")
    state.fife_reads["ok"] += 1

    def draw() -> bytes:
        jpeg = state.renderer.render(entry.spec, entry.index).jpeg
        return as_png(jpeg) if entry.png else jpeg

    data = await asyncio.get_running_loop().run_in_executor(state.renderer.pool, draw)
    return web.Response(body=data, content_type="image/png" if entry.png else "image/jpeg")


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
    req = parse_images_body(await read_body(request), state.spoken)
    email, records = _resolve(state, req)
    if state.credits_left() == 0:
        raise Answer(402, no_credits())
    seed = req.seed if req.seed is not None else state.pick_seed()
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
    key = json.dumps(content, sort_keys=True)
    admit(state, email, model=req.model, key=key, captcha_retry=req.captcha_retry)
    state.quotas.count(email, req.model, state.wall())

    marker = re.search(rf"\b{re.escape(cfg.moderation_word)}\b", req.prompt, re.IGNORECASE)
    decision = state.decide(
        content, marker=marker is not None, nano_plain=_nano(req.model) and not refs
    )
    return await _generate(
        request, state, req=req, email=email, seed=seed, refs=refs, decision=decision
    )


def _nano(model: str) -> bool:
    """A model of the nano-banana family: nano-banana in 2025-11, nano-banana-2-lite, -2
    and -pro in 2026-07 (``model`` is the dialect's canonical name by now)."""
    return model.startswith("nano-banana")


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
    spec = RenderSpec(req.prompt, req.model, req.aspect_ratio, seed, refs)
    try:
        if decision.fault == "reset":
            await asyncio.sleep(decision.latency * decision.fault_at * scale)
            request[FAULT_KEY] = "reset"
            _reset_connection(request)
            return web.Response()
        rendering = None
        if decision.outcome == "ok":
            png = tuple(
                "png" in state.spoken.image_formats
                and unit(state.config.seed, "png", *spec.cache_key(), i) < state.config.png_rate
                for i in range(req.count)
            )
            rendering = asyncio.get_running_loop().run_in_executor(
                state.renderer.pool, _render_all, state, spec, req.count, png
            )
        await asyncio.sleep(decision.latency * scale)
    finally:
        state.release(refund=not success, account=email)
        if not success:
            state.quotas.count(email, req.model, state.wall(), step=-1)
    if decision.outcome == "unsafe":
        raise Answer(400, UNSAFE_400)
    if decision.outcome == "moderated":
        raise Answer(500, MODERATED_500)
    assert rendering is not None
    answer = _ANSWERS[state.spoken.response_shape]
    body = answer(state, req, request=request, email=email, seed=seed, spec=spec,
                  rendered=await rendering)
    if decision.fault == "truncated":
        request[FAULT_KEY] = "truncated"
        _truncate(request, json.dumps(body).encode())
        return web.Response()
    state.record_success(decision.latency, req.count)
    return json_response(200, body)
