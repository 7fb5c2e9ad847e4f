"""The simulator's aiohttp application: routes, auth, and the stats/reset hooks.

API routes live under ``/v1/google-flow`` and need ``Authorization: Bearer TOKEN``;
``/_sim/stats`` and ``/_sim/reset`` are the simulator's own and need none.
"""

from __future__ import annotations

import email.utils
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from flowpipe.sim.assets import handle_upload
from flowpipe.sim.bodies import SESSION_596, UNAUTHORIZED, Answer, json_response
from flowpipe.sim.config import SimConfig
from flowpipe.sim.images import FAULT_KEY, STATE, find_account, handle_fife, handle_images
from flowpipe.sim.state import SimState
from flowpipe.sim.upscale import handle_upscale

__all__ = ["BASE_PATH", "STATE", "create_app"]

BASE_PATH = "/v1/google-flow"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _authorized(state: SimState, header: str) -> bool:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    given = token.strip().encode()
    return any(hmac.compare_digest(given, known.encode()) for known in state.config.tokens)


@web.middleware
async def _api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Auth for API routes; turn ``Answer`` into a response; count statuses and faults."""
    if not request.path.startswith(BASE_PATH + "/"):
        return await handler(request)
    state = request.app[STATE]
    images = request.path == BASE_PATH + "/images"
    try:
        if not _authorized(state, request.headers.get("Authorization", "")):
            raise Answer(401, UNAUTHORIZED)
        response = await handler(request)
    except Answer as answer:
        response = json_response(answer.status, answer.body, answer.headers)
    if state.spoken.rate_reasons and not response.prepared:
        # The service's clock (a per-model quota ends at its midnight): API time here.
        response.headers["Date"] = email.utils.formatdate(state.wall(), usegmt=True)
    fault = request.get(FAULT_KEY)
    if fault is not None:
        state.faults[fault] += 1
    else:
        state.record_status(response.status, images_endpoint=images)
    return response


def _health(state: SimState, email: str) -> dict[str, str]:
    if email in state.config.broken_accounts:
        return {"email": email, "health": SESSION_596["error"], "error": SESSION_596["error"]}
    return {"email": email, "health": "OK"}


async def _accounts(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response(200, {email: _health(state, email) for email in state.config.all_accounts})


async def _account(request: web.Request) -> web.Response:
    state = request.app[STATE]
    email = request.match_info["email"]
    try:
        known = find_account(state, email)
    except Answer as answer:
        if answer.status != 596:
            raise
        known = next(a for a in state.config.broken_accounts if a.lower() == email.lower())
    return json_response(200, _health(state, known))


async def _stats(request: web.Request) -> web.Response:
    return json_response(200, request.app[STATE].stats())


async def _reset(request: web.Request) -> web.Response:
    forgotten = request.app[STATE].registry.forget_all()
    return json_response(200, {"forgotten": forgotten})


def create_app(config: SimConfig, *, state: SimState | None = None) -> web.Application:
    """The simulator as an aiohttp application; API time starts when it starts serving.

    ``state`` lets a caller share or inspect the server's memory (tests, ``running_sim``).
    """
    app = web.Application(middlewares=[_api_middleware])
    app[STATE] = state if state is not None else SimState(config)

    async def _start(app: web.Application) -> None:
        app[STATE].start()

    app.on_startup.append(_start)
    app.router.add_post(BASE_PATH + "/images", handle_images)
    if app[STATE].spoken.upscale_resolutions:
        app.router.add_post(BASE_PATH + "/images/upscale", handle_upscale)
    app.router.add_get("/_sim/fife/{image_id}", handle_fife)
    app.router.add_post(BASE_PATH + "/assets/{email}", handle_upload)
    app.router.add_get(BASE_PATH + "/accounts", _accounts)
    app.router.add_get(BASE_PATH + "/accounts/{email}", _account)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_post("/_sim/reset", _reset)
    return app
