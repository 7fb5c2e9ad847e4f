"""The review server: the contact sheet on loopback, with picks written to RECIPE.picks.yaml.

Safety (docs/review.md): it listens on 127.0.0.1 only; every path starts with a random
token (``/TOKEN/``) and anything else is refused; a request whose ``Host`` is not this
server's loopback address, or whose ``Origin`` is another site's, is refused (DNS
rebinding, cross-site requests); a write must come from the page itself (its Origin)
as JSON. It reads image files of the output folder and writes one file, the picks file,
through ``flowpipe.store.picks.update_picks`` (a lock and an atomic replace), one change
per request, so two tabs never lose each other's picks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from aiohttp import web

from flowpipe.errors import FlowpipeError, OutputError, UsageError
from flowpipe.loopthread import LoopThread
from flowpipe.report.render import ReviewMode, render_report
from flowpipe.report.reviewer import picks_json, recipe_of
from flowpipe.store.manifest import ManifestNode, read_manifest
from flowpipe.store.picks import Picks, dump_picks, picks_path, read_picks, update_picks
from flowpipe.store.runlog import read_run_log

__all__ = ["HOST", "ReviewConfig", "ReviewServer", "find_recipe", "review_app", "serve_review"]

HOST = "127.0.0.1"
_IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
_MAX_BODY = 64 * 1024
_ACTIONS = ("pick", "unpick", "reject", "unreject", "note")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_PORT: web.AppKey[list[int]] = web.AppKey("port", list)
_CONFIG: web.AppKey[ReviewConfig] = web.AppKey("config", object)  # type: ignore[arg-type]
_WRITE_LOCK: web.AppKey[asyncio.Lock] = web.AppKey("write_lock", asyncio.Lock)


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    """What one review server serves: ``out``'s images and page, picks beside ``recipe``."""

    out: Path
    recipe: Path
    token: str

    @property
    def picks(self) -> Path:
        """The one file the server writes."""
        return picks_path(self.recipe)

    @classmethod
    def for_output(cls, out: Path, recipe: Path | None = None) -> ReviewConfig:
        """The server of ``out``, its picks beside ``recipe`` (from run.json when None)."""
        out = Path(out)
        read_manifest(out)  # an OutputError now, not on the first request
        return cls(out, find_recipe(out, recipe), secrets.token_urlsafe(24))


def find_recipe(out: Path, recipe: Path | None) -> Path:
    """The recipe the picks belong to: given, or named by ``out``'s run.json.

    run.json comes with the folder, which may be a downloaded artifact: the recipe it
    names is taken only when it lies under the current folder, so a folder from elsewhere
    cannot choose where the picks file is written (docs/review.md).
    """
    if recipe is not None:
        if not Path(recipe).is_file():
            raise UsageError(f"no recipe file {recipe}", option="recipe")
        return Path(recipe)
    found = recipe_of(out, read_run_log(out)[0])
    if found is None:
        raise UsageError(
            f"cannot tell which recipe made {out}: its run.json does not name one that exists",
            hint="name the recipe (the picks file goes beside it)", option="recipe",
        )
    if not found.resolve().is_relative_to(Path.cwd().resolve()):
        raise UsageError(
            f"{out}'s run.json names the recipe {found}, outside the current folder",
            hint="name the recipe to write picks beside it, or run from a folder that holds it",
            option="recipe",
        )
    return found


# -- the guard -----------------------------------------------------------------------------


def _allowed(request: web.Request) -> tuple[set[str], set[str]]:
    port = request.app[_PORT][0]
    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    return hosts, {f"http://{h}" for h in hosts}


def _refuse(status: int, why: str) -> web.Response:
    return web.json_response({"error": why}, status=status, headers=_HEADERS)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host, Origin and token before anything else; safe headers on every answer."""
    hosts, origins = _allowed(request)
    if request.headers.get("Host", "") not in hosts:
        return _refuse(403, "foreign Host header")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in origins:
        return _refuse(403, "foreign Origin")
    token = request.app[_CONFIG].token
    first = request.path.split("/")[1] if request.path.count("/") >= 2 else ""
    if not hmac.compare_digest(first.encode(), token.encode()):
        return _refuse(403, "no valid token in the URL")
    if request.method not in ("GET", "HEAD") and (
        origin is None or request.content_type != "application/json"
    ):
        return _refuse(403, "writes come from the review page only")
    response = await handler(request)
    response.headers.update(_HEADERS)
    return response


# -- handlers ------------------------------------------------------------------------------


async def _page(request: web.Request) -> web.Response:
    config = request.app[_CONFIG]
    mode = ReviewMode(api="api/picks", recipe=config.recipe)
    html = await asyncio.to_thread(render_report, config.out, review=mode)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def _state(picks: Picks, order: list[str]) -> dict[str, Any]:
    return {"picks": picks_json(picks), "yaml": dump_picks(picks, order) if picks.entries else ""}


async def _get_picks(request: web.Request) -> web.Response:
    config = request.app[_CONFIG]
    try:
        picks = await asyncio.to_thread(read_picks, config.picks)
        order = [n.id for n in (await asyncio.to_thread(read_manifest, config.out)).nodes]
    except FlowpipeError as exc:
        return _refuse(500, str(exc))
    return web.json_response(_state(picks, order))


def _change(body: Mapping[str, Any], nodes: Mapping[str, ManifestNode]) -> Callable[[Picks], Picks]:
    """The one change a request asks for, checked against the output folder (ValueError)."""
    action, node_id = body.get("action"), body.get("node")
    if action not in _ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    node = nodes.get(node_id) if isinstance(node_id, str) else None
    if node is None:
        raise ValueError("no such node in this output folder")
    if action == "note":
        note = body.get("note")
        if not isinstance(note, str) or len(note) > 2000:
            raise ValueError("a note is text of at most 2000 characters")
        return lambda p: p.annotate(node.id, note)
    if action == "unpick":
        return lambda p: p.unpick(node.id)
    index = body.get("image")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(node.images):
        raise ValueError(f"node {node.id!r} has no image {index!r}")
    if action == "unreject":
        return lambda p: p.unreject(node.id, index)
    sha = node.images[index].sha256
    if body.get("sha256") != sha:
        raise LookupError("that image was re-made since the page was loaded: reload it")
    if action == "pick":
        return lambda p: p.pick(node.id, index, sha)
    return lambda p: p.reject(node.id, index, sha)


async def _post_picks(request: web.Request) -> web.Response:
    config = request.app[_CONFIG]
    try:
        body = json.loads(await request.text())
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        manifest = await asyncio.to_thread(read_manifest, config.out)
        change = _change(body, {n.id: n for n in manifest.nodes})
    except LookupError as exc:
        return _refuse(409, str(exc))
    except (ValueError, OutputError) as exc:
        return _refuse(400, str(exc))
    except RecursionError:  # 64 KB of '[' is deeper than json.loads goes
        return _refuse(400, "the JSON nests too deeply")
    order = [n.id for n in manifest.nodes]
    try:
        async with request.app[_WRITE_LOCK]:
            picks = await asyncio.to_thread(update_picks, config.picks, change, order)
    except FlowpipeError as exc:  # the file became unreadable (a bad hand edit) or unwritable
        return _refuse(500, str(exc))
    return web.json_response(_state(picks, order))


async def _file(request: web.Request) -> web.StreamResponse:
    """An image file of the output folder (thumbnails included), nothing else."""
    config = request.app[_CONFIG]
    rel = PurePosixPath(request.match_info["path"])
    kind = _IMAGE_TYPES.get(rel.suffix.lower())
    if kind is None or rel.is_absolute() or any(p in ("..", "") for p in rel.parts) \
            or any(p.startswith(".") and p != ".thumbs" for p in rel.parts):
        return _refuse(404, "not found")
    root = config.out.resolve()
    target = (root / Path(*rel.parts)).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return _refuse(404, "not found")
    return web.FileResponse(target, headers={"Content-Type": kind})


def review_app(config: ReviewConfig, port: int) -> web.Application:
    """The server's app; ``port`` is the one it listens on (for the Host check)."""
    app = web.Application(middlewares=[_guard], client_max_size=_MAX_BODY)
    app[_CONFIG] = config
    app[_PORT] = [port]
    app[_WRITE_LOCK] = asyncio.Lock()
    prefix = f"/{config.token}"
    app.router.add_get(f"{prefix}/", _page)
    app.router.add_get(f"{prefix}/api/picks", _get_picks)
    app.router.add_post(f"{prefix}/api/picks", _post_picks)
    app.router.add_get(prefix + "/{path:.+}", _file)
    return app


async def _start(config: ReviewConfig, port: int) -> tuple[web.AppRunner, str]:
    app = review_app(config, port)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise UsageError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}",
                         option="port") from None
    bound = int(runner.addresses[0][1])
    app[_PORT][0] = bound
    return runner, f"http://{HOST}:{bound}/{config.token}/"


def serve_review(config: ReviewConfig, *, port: int = 0,
                 ready: Callable[[str], None] = print) -> None:
    """Serve until interrupted; ``ready`` gets the page's URL (with its token) first."""

    async def main() -> None:
        runner, url = await _start(config, port)
        ready(url)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


class ReviewServer(LoopThread):
    """The server on a background thread, for tests and sync callers (``with`` block)."""

    def __init__(self, config: ReviewConfig, port: int = 0) -> None:
        super().__init__("flowpipe-review")
        self.config, self._port = config, port
        self.url = ""

    @contextlib.asynccontextmanager
    async def _serving(self) -> AsyncIterator[None]:
        runner, self.url = await _start(self.config, self._port)
        try:
            yield
        finally:
            await runner.cleanup()

    def __enter__(self) -> ReviewServer:
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_serving(10)
