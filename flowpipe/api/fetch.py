"""Downloads of generated images from their signed ``fifeUrl`` (2026-07 answers).

A 2026-07 answer may hold an image only as a signed URL that expires within hours,
so the client reads it at once, through the same ``Transport`` as every API call.
The URL is a capability in itself: nothing else goes with it. The request carries no
``Authorization`` header, no cookie and no token in any form, to the first host and
to any it redirects to; a URL that holds the token is not sent at all.

Transient failures (timeouts, resets, 429/5xx, a cut body) are retried a few times
with a pause, as the API call itself would be; an expired, tampered or refused URL
(any other 4xx) is not. Either way the last word is an ``ImageURLError``, which the
engine turns into "make the node again, counted as a retry". Logs name the URL
without its query: the signature is never written anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from flowpipe.api.errors import TRANSPORT_EXCEPTIONS, Scrub, image_url_error, transport_error
from flowpipe.api.responses import read_image_bytes, strip_query
from flowpipe.api.transport import HTTPRequest, HTTPResponse, Transport
from flowpipe.imagebytes import ImageInfo

__all__ = ["FetchPolicy", "ImageFetcher", "Sleep"]

logger = logging.getLogger("flowpipe.api")

Sleep = Callable[[float], Awaitable[None]]

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchPolicy:
    """How hard to try for one image: ``attempts`` in all, ``delay`` seconds between.

    Delays are API seconds: the client's ``sleep`` is what turns them into real time
    (a runner against a scaled simulator passes one that scales them).
    """

    attempts: int = 4
    delay: tuple[float, float] = (2.0, 5.0)

    def __post_init__(self) -> None:
        low, high = self.delay
        if self.attempts < 1 or not 0 <= low <= high:
            raise ValueError("FetchPolicy needs attempts >= 1 and 0 <= delay[0] <= delay[1]")


class ImageFetcher:
    """Reads signed image URLs with no credentials; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        *,
        user_agent: str,
        timeout: float,
        policy: FetchPolicy,
        sleep: Sleep,
        scrub: Scrub,
        token: str,
        rng: random.Random | None = None,
    ) -> None:
        self._transport = transport
        self._user_agent = user_agent
        self._timeout = timeout
        self._policy = policy
        self._sleep = sleep
        self._scrub = scrub
        self._token = token
        self._rng = rng or random.Random()

    async def fetch(self, url: str) -> tuple[bytes, ImageInfo]:
        """The checked bytes behind ``url`` and their format and size, or ``ImageURLError``."""
        summary = f"GET {strip_query(url)}"
        self._check(url, summary)
        last = "no attempt"
        for attempt in range(self._policy.attempts):
            if attempt:
                await self._sleep(self._rng.uniform(*self._policy.delay))
            try:
                response = await self._get(url, summary)
            except TRANSPORT_EXCEPTIONS as exc:
                failure = transport_error(exc, request=summary, timeout=self._timeout,
                                          scrub=self._scrub)
                last = failure.reason or failure.message
                logger.info("%s -> %s (attempt %d)", summary, last, attempt + 1)
                continue
            if response.status == 200:
                info = read_image_bytes(response.body)
                if not isinstance(info, str):
                    return response.body, info
                last = f"the answer is {info}"
            elif response.status in RETRY_STATUSES:
                last = f"HTTP {response.status}"
            else:
                raise image_url_error(
                    f"the signed URL was refused with HTTP {response.status} "
                    "(expired, tampered or not ours)",
                    request=summary, status=response.status, scrub=self._scrub,
                )
            logger.info("%s -> %s (attempt %d)", summary, last, attempt + 1)
        raise image_url_error(
            f"no image after {self._policy.attempts} attempts ({last})",
            request=summary, scrub=self._scrub,
        )

    def _check(self, url: str, summary: str) -> None:
        """Refuse, before sending, a URL that is not http(s) or that carries the token."""
        if not url.lower().startswith(("https://", "http://")):
            raise image_url_error("the image URL is not http(s)", request=summary,
                                  scrub=self._scrub)
        if (self._token and self._token in url) or self._scrub(url) != url:
            raise image_url_error("the image URL carries the API token; it was not sent",
                                  request=summary, scrub=self._scrub)

    async def _get(self, url: str, summary: str) -> HTTPResponse:
        """GET with only a User-Agent and Accept, following a few redirects by hand."""
        headers = {"User-Agent": self._user_agent, "Accept": "image/png, image/jpeg, */*"}
        for _ in range(MAX_REDIRECTS + 1):
            request = HTTPRequest("GET", url, headers, b"", self._timeout)
            async with asyncio.timeout(self._timeout):
                response = await self._transport.send(request)
            logger.debug("%s -> %d (%d bytes)", summary, response.status, len(response.body))
            location = response.headers.get("location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            url = urljoin(url, location)
            self._check(url, summary)
        raise image_url_error(f"more than {MAX_REDIRECTS} redirects", request=summary,
                              scrub=self._scrub)
