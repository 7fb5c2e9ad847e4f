"""The seam between the client and the network: one request in, one response out.

``FlowClient`` only ever calls ``Transport.send``. ``AiohttpTransport`` is the real
one and owns the single shared ``aiohttp.ClientSession``; ``MockTransport`` answers
from a plain function so unit tests never open a socket. Transports do not interpret
statuses or map errors: the client does that in one place (``flowpipe.api.errors``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import aiohttp

__all__ = [
    "AiohttpTransport",
    "HTTPRequest",
    "HTTPResponse",
    "Handler",
    "MockTransport",
    "Transport",
    "redact_headers",
]

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Copy headers with credentials masked, for reprs and logs."""
    return {k: ("***" if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


@dataclass(frozen=True, slots=True, repr=False)
class HTTPRequest:
    """What the client asks a transport to send; ``timeout`` is the total in seconds."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    body: bytes = b""
    timeout: float | None = None

    def __repr__(self) -> str:
        # The Authorization header carries the token: never show it.
        return (
            f"HTTPRequest(method={self.method!r}, url={self.url!r}, "
            f"headers={redact_headers(self.headers)!r}, body=<{len(self.body)} bytes>, "
            f"timeout={self.timeout!r})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class HTTPResponse:
    """A complete answer: the whole body has been read before it is returned."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    body: bytes = b""

    def __repr__(self) -> str:
        # Bodies hold megabytes of base64; the length is what a reader needs.
        return (
            f"HTTPResponse(status={self.status!r}, headers={redact_headers(self.headers)!r}, "
            f"body=<{len(self.body)} bytes>)"
        )


@runtime_checkable
class Transport(Protocol):
    """Sends one request and returns the full response, or raises a low-level error."""

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and read the whole answer."""
        ...

    async def aclose(self) -> None:
        """Release connections; the transport is not used afterwards."""
        ...


Handler = Callable[[HTTPRequest], HTTPResponse | Awaitable[HTTPResponse]]


class MockTransport:
    """Answers every request by calling ``handler`` (sync or async); records requests.

    The handler may raise, for example ``aiohttp.ServerDisconnectedError()``, to act
    out a transport failure.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[HTTPRequest] = []
        self.closed = False

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Record ``request`` and return what the handler makes of it."""
        self.requests.append(request)
        result = self._handler(request)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, HTTPResponse), f"handler returned {type(result).__name__}"
        return result

    async def aclose(self) -> None:
        """Mark the transport closed (tests check the client closes it)."""
        self.closed = True

    def __repr__(self) -> str:
        return f"MockTransport(requests={len(self.requests)}, closed={self.closed})"


class AiohttpTransport:
    """The real transport: one lazily created ``aiohttp.ClientSession`` for all requests.

    Redirects are not followed (a redirect would carry the token elsewhere; the client
    reports a 3xx as an unexpected status). Cookies are neither kept nor sent. Proxy
    variables from the environment are ignored unless ``trust_env`` is set, so a
    loopback simulator is never proxied.
    """

    def __init__(
        self,
        *,
        connect_timeout: float | None = None,
        trust_env: bool = False,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._trust_env = trust_env
        self._session = session
        self._owns_session = session is None
        self._closed = False

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the transport is closed")
        if self._session is None:
            # limit=0: the runner's adaptive limiter decides concurrency, not the pool.
            # No cookie jar: the API authenticates by token, and a cookie it set must
            # never ride along to an image URL (2026-07 reads those on this session).
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None, connect=self._connect_timeout),
                trust_env=self._trust_env,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` on the shared session and read the whole body."""
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(total=request.timeout, connect=self._connect_timeout)
        async with session.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            data=request.body if request.body else None,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            headers: dict[str, str] = {}
            for name, value in response.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            return HTTPResponse(response.status, headers, body)

    async def aclose(self) -> None:
        """Close the shared session if this transport created it."""
        self._closed = True
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    @property
    def closed(self) -> bool:
        """True once ``aclose`` ran."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._session else "idle")
        return f"AiohttpTransport({state})"
