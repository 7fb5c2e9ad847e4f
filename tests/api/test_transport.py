"""Transports: the mock calls a function; the aiohttp one talks HTTP on loopback.

The aiohttp tests use servers on 127.0.0.1 only: a tiny aiohttp.web app, and a raw
asyncio server that misbehaves on purpose (cut bodies, dropped connections).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from flowpipe.api import (
    AiohttpTransport,
    FlowClient,
    HTTPRequest,
    HTTPResponse,
    ImageRequest,
    MockTransport,
    Timeouts,
    Transport,
)
from flowpipe.errors import TransportError, UnexpectedStatusError

from .builders import TOKEN, images_doc, make_png, media_doc, media_item


async def test_mock_transport_takes_sync_and_async_handlers() -> None:
    async def async_handler(request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(201, {}, request.body)

    sync = MockTransport(lambda r: HTTPResponse(200, {}, b"sync"))
    other = MockTransport(async_handler)
    request = HTTPRequest("POST", "http://x/images", {}, b"echo")
    assert (await sync.send(request)).body == b"sync"
    assert (await other.send(request)).body == b"echo"
    assert sync.requests == [request]
    assert isinstance(sync, Transport) and isinstance(AiohttpTransport(), Transport)


def test_reprs_hide_credentials_and_bodies() -> None:
    request = HTTPRequest("GET", "http://x", {"Authorization": f"Bearer {TOKEN}"}, b"x" * 10_000)
    response = HTTPResponse(200, {"Set-Cookie": "sid=abc"}, b"y" * 10_000)
    assert TOKEN not in repr(request)
    assert "sid=abc" not in repr(response)
    assert "<10000 bytes>" in repr(request) and "<10000 bytes>" in repr(response)


# -- the real transport on loopback ---------------------------------------------------

Seen = list[dict[str, str]]


async def _serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/v1/google-flow"


async def test_aiohttp_transport_sends_and_reads_on_one_session() -> None:
    seen: Seen = []
    peers: set[int] = set()

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.headers))
        transport = request.transport
        assert transport is not None
        peers.add(transport.get_extra_info("peername")[1])
        body = await request.read()
        return web.json_response(
            images_doc(1) if body else {"a@b.c": {"health": "OK"}}, headers={"X-Twice": "1"}
        )

    runner, base = await _serve(handler)
    try:
        async with FlowClient(base_url=base, token=TOKEN) as client:
            accounts = await client.accounts()
            result = await client.generate(ImageRequest("x"))
            await client.accounts()
        assert accounts["a@b.c"].ok and len(result.images) == 1
        assert seen[0]["Authorization"] == f"Bearer {TOKEN}"
        assert seen[0]["User-Agent"].startswith("flowpipe/")
        assert seen[1]["Content-Type"] == "application/json"
        assert len(peers) == 1, "one shared session keeps one connection alive"
    finally:
        await runner.cleanup()


async def test_redirects_are_not_followed() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://127.0.0.1:9/elsewhere")

    runner, base = await _serve(handler)
    try:
        async with FlowClient(base_url=base, token=TOKEN) as client:
            with pytest.raises(UnexpectedStatusError) as caught:
                await client.accounts()
        assert caught.value.status == 302
    finally:
        await runner.cleanup()


async def test_closed_transport_refuses_to_send() -> None:
    transport = AiohttpTransport()
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await transport.send(HTTPRequest("GET", "http://127.0.0.1:9/"))


@asynccontextmanager
async def raw_server(reply: Callable[[asyncio.StreamWriter], None]) -> AsyncIterator[str]:
    """A loopback server that reads one request head and answers with ``reply``."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        reply(writer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1/google-flow"
    finally:
        server.close()
        await server.wait_closed()


def _truncated(writer: asyncio.StreamWriter) -> None:
    body = json.dumps({"a@b.c": {"health": "OK"}}).encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body) + 50}\r\n\r\n".encode()
        + body
    )


def _nothing(writer: asyncio.StreamWriter) -> None:
    pass


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        pytest.param(_truncated, "truncated body", id="truncated-body"),
        pytest.param(_nothing, "server disconnected", id="closed-without-answer"),
        pytest.param(_reset, None, id="connection-reset"),
    ],
)
async def test_network_failures_become_transport_errors(
    reply: Callable[[asyncio.StreamWriter], None], reason: str | None
) -> None:
    async with raw_server(reply) as base, FlowClient(base_url=base, token=TOKEN) as client:
        with pytest.raises(TransportError) as caught:
            await client.accounts()
    if reason is not None:
        assert caught.value.reason == reason
    assert TOKEN not in str(caught.value)


async def test_silent_server_times_out() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # waits until the client gives up

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = FlowClient(
            base_url=f"http://127.0.0.1:{port}", token=TOKEN, timeouts=Timeouts(accounts=0.05)
        )
        async with client:
            with pytest.raises(TransportError) as caught:
                await client.accounts()
        assert caught.value.reason == "timeout"
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_refused_connection_is_a_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with FlowClient(base_url=f"http://127.0.0.1:{port}", token=TOKEN) as client:
            with pytest.raises(TransportError) as caught:
                await client.accounts()
    assert caught.value.reason == "connect failed"


async def test_the_image_url_gets_no_token_and_no_cookie_from_the_session() -> None:
    """2026-07: the signed URL is read on the same session, with no credential at all."""
    seen: dict[str, dict[str, str]] = {}
    png = make_png()

    async def handler(request: web.Request) -> web.StreamResponse:
        seen[request.path] = dict(request.headers)
        if request.path.endswith("/images"):
            url = f"http://localhost:{request.url.port}/img/1?Signature=abc"
            doc = media_doc(media_item(fife_url=url))
            response = web.json_response(doc)
            response.set_cookie("sid", "session-secret")  # a cookie the API would set
            return response
        return web.Response(body=png, content_type="image/png")

    runner, base = await _serve(handler)
    try:
        base = base.replace("127.0.0.1", "localhost")  # a host name: cookies are kept for it
        async with FlowClient(base_url=base, token=TOKEN, dialect="2026-07") as client:
            result = await client.generate(ImageRequest("x", dialect="2026-07"))
        assert result.images[0].data == png
        image_headers = {k.lower(): v for k, v in seen["/img/1"].items()}
        assert "authorization" not in image_headers and "cookie" not in image_headers
        assert TOKEN not in json.dumps(image_headers)
    finally:
        await runner.cleanup()
