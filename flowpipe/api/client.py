"""``FlowClient``: the asyncio client for the Google Flow image API at useapi.net.

One client holds one transport (by default one shared aiohttp session) for every
request of a run. Each call builds an ``HTTPRequest``, sends it under an explicit
timeout, and turns the answer into a typed result or a ``flowpipe.errors.APIError``.
The client never retries an API call: what to do about each error is the runner's
decision. (It does retry reading a signed image URL, ``flowpipe.api.fetch``: the
generation is done and paid for by then.) The token goes into the Authorization
header of API calls and nowhere else: not to image URLs, reprs, log lines or
exception texts.

A client speaks one dialect of the API (``flowpipe.dialects``): it decides which
answers it reads, what a 429 means, and which uploads and endpoints exist.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import json
import logging
import math
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Protocol, TypeVar
from urllib.parse import quote, urlsplit

from flowpipe.api.errors import TRANSPORT_EXCEPTIONS, error_for_status, transport_error
from flowpipe.api.fetch import FetchPolicy, ImageFetcher, Sleep
from flowpipe.api.models import (
    AccountInfo,
    GeneratedImage,
    ImageRequest,
    ImageResult,
    UploadedAsset,
    UpscaledImage,
)
from flowpipe.api.responses import (
    ParsedGeneration,
    PendingImage,
    parse_account,
    parse_accounts,
    parse_generation,
    parse_uploaded_asset,
    parse_upscaled,
)
from flowpipe.api.secrets import Scrubber
from flowpipe.api.transport import AiohttpTransport, HTTPRequest, HTTPResponse, Transport
from flowpipe.dialects import DEFAULT_DIALECT, Dialect, dialect
from flowpipe.errors import InvalidRequestError, ResponseError, UsageError
from flowpipe.imagebytes import JPEG_START, PNG_START, mime_type

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_API_URL",
    "ENV_TOKEN",
    "MAX_UPLOAD_BYTES",
    "UPLOAD_TYPES",
    "USER_AGENT",
    "FlowClient",
    "Timeouts",
    "client_from_env",
]

logger = logging.getLogger("flowpipe.api")

DEFAULT_BASE_URL = "https://api.useapi.net/v1/google-flow"
ENV_API_URL = "FLOWPIPE_API_URL"
ENV_TOKEN = "USEAPI_TOKEN"  # noqa: S105 - the variable's name, not a secret
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Accepted upload types (2025-11) and the magic bytes their files start with.
UPLOAD_TYPES: Mapping[str, bytes] = {"image/png": PNG_START, "image/jpeg": JPEG_START}


def _version() -> str:
    # Read from the installed metadata, not ``flowpipe.__version__``: importing the
    # package root from here would be circular once it re-exports this module.
    try:
        return importlib.metadata.version("flowpipe")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "0"


USER_AGENT = f"flowpipe/{_version()}"
DEFAULT_FETCH = FetchPolicy()

T_co = TypeVar("T_co", covariant=True)


class Parser(Protocol[T_co]):
    """A ``flowpipe.api.responses`` function: body and summary in, typed result out."""

    def __call__(self, body: bytes, /, *, request: str) -> T_co: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds allowed per call: connecting, and the whole exchange per endpoint.

    A generation takes 10-20 s when the API is healthy, so ``generate`` leaves room for
    a slow one without letting a hung connection hold a concurrency slot forever.
    """

    connect: float = 10.0
    generate: float = 120.0
    upload: float = 60.0
    accounts: float = 30.0
    fetch: float = 60.0  # one read of a signed image URL
    upscale: float = 180.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"Timeouts.{item.name} must be a positive number, not {value!r}")


def _check_token(token: str) -> None:
    if not token:
        raise UsageError("no API token given", hint=f"set {ENV_TOKEN} to your useapi.net token")
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in token):
        # Never echo it: the point is that it must not reach a message.
        raise UsageError(
            "the API token holds spaces or characters that cannot go in a header",
            hint=f"check {ENV_TOKEN}",
        )


def check_base_url(base_url: str, *, token: str | None = None) -> str:
    """``base_url`` without a trailing ``/``, or a UsageError that never echoes a secret.

    Refused: anything but ``http(s)://HOST/PATH``; credentials (``user:pw@``), which
    aiohttp would refuse next to the Authorization header and which would otherwise
    reach run.json, the report and the terminal; and a URL that holds the token in any
    encoding (``token`` given). Messages show the URL as ``scheme://host/path`` only.
    """
    url = base_url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        parts, port = urlsplit(""), None
    shown = f"{parts.scheme}://{parts.hostname or '?'}{f':{port}' if port else ''}{parts.path}"
    if "@" in parts.netloc:
        raise UsageError(
            f"{ENV_API_URL} ({shown}) must not hold credentials (user:password@)",
            hint=f"remove them: flowpipe sends the token from {ENV_TOKEN} in a header",
        )
    if token is not None and Scrubber(token).reveals(url):
        raise UsageError(
            f"{ENV_API_URL} holds the API token", hint=f"set it in {ENV_TOKEN} only"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or "?" in url or "#" in url:
        raise UsageError(
            f"{ENV_API_URL} ({shown}) is not an http(s) URL without query or fragment",
            hint=f"for example {DEFAULT_BASE_URL}",
        )
    return url


class FlowClient:
    """Calls ``/images``, ``/images/upscale``, ``/assets/{email}`` and ``/accounts``.

    Every call goes through one shared transport, image URL downloads included. Use
    ``async with FlowClient(...) as client:`` or call ``aclose()``; the client closes
    its transport, including one passed in. ``dialect`` is the API version spoken;
    ``fetch`` and ``sleep`` govern reading signed image URLs (delays in API seconds:
    pass a ``sleep`` that scales them when the API is a scaled simulator).
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        transport: Transport | None = None,
        timeouts: Timeouts = Timeouts(),
        user_agent: str = USER_AGENT,
        dialect: str = DEFAULT_DIALECT,
        fetch: FetchPolicy = DEFAULT_FETCH,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        _check_token(token)
        self.base_url = check_base_url(base_url, token=token)
        self.timeouts = timeouts
        self.user_agent = user_agent
        self.dialect = _check_dialect(dialect)
        self._token = token
        self._scrub = Scrubber(token)
        self._transport: Transport = transport or AiohttpTransport(connect_timeout=timeouts.connect)
        self._fetcher = ImageFetcher(
            self._transport, user_agent=user_agent, timeout=timeouts.fetch, policy=fetch,
            sleep=sleep, scrub=self.scrub, token=token, rng=random.Random(),
        )

    @property
    def spoken(self) -> Dialect:
        """The dialect's table (``flowpipe.dialects``)."""
        return dialect(self.dialect)

    def __repr__(self) -> str:
        return f"FlowClient(base_url={self.base_url!r}, token='***', dialect={self.dialect!r})"

    async def __aenter__(self) -> FlowClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport and its connections."""
        await self._transport.aclose()

    def scrub(self, text: str) -> str:
        """``text`` with the token, in any encoding, replaced by ``***``."""
        return self._scrub(text)

    # -- endpoints ---------------------------------------------------------------

    async def generate(self, request: ImageRequest) -> ImageResult:
        """``POST /images``: generate up to four images, each read and checked.

        Images in the answer (``encodedImage``) are decoded; images behind a signed
        ``fifeUrl`` (2026-07) are downloaded at once, without credentials. JPEG or PNG
        is told by the bytes (``GeneratedImage.format``).
        """
        if request.dialect != self.dialect:
            raise InvalidRequestError(
                f"the request speaks api {request.dialect}, this client {self.dialect}",
                reason="dialect mismatch", hint="build the request with the client's dialect",
            )
        summary = f"POST /images {request.describe()}"
        # ASCII escapes keep any str (even a lone surrogate) encodable.
        body = json.dumps(request.to_json()).encode("ascii")
        response = await self._send(
            "POST",
            "/images",
            summary=summary,
            timeout=self.timeouts.generate,
            body=body,
            content_type="application/json",
            model=request.model,
        )
        parsed = self._parse(response, summary, parse_generation)
        images = await asyncio.gather(*(self._complete(image) for image in parsed.images))
        return ImageResult(images=tuple(images), raw=parsed.raw)

    async def _complete(self, image: PendingImage) -> GeneratedImage:
        if image.data is not None and image.info is not None:
            return image.complete(image.data, image.info)
        assert image.fife_url is not None
        data, info = await self._fetcher.fetch(image.fife_url)
        return image.complete(data, info)

    async def upscale(
        self, media_generation_id: str, resolution: str, *, captcha_retry: int | None = None
    ) -> UpscaledImage:
        """``POST /images/upscale`` (2026-07): one image enlarged to ``2k`` or ``4k``.

        The account is the one that owns ``media_generation_id``. A resolution or a
        dialect without upscaling raises ``InvalidRequestError`` before sending.
        """
        spoken = self.spoken
        if resolution not in spoken.upscale_resolutions:
            problem = (
                f"resolution {resolution!r} is not one of {', '.join(spoken.upscale_resolutions)}"
                if spoken.upscale_resolutions else f"api {spoken.name} cannot upscale"
            )
            raise InvalidRequestError(f"cannot upscale: {problem}", reason=problem,
                                      hint="upscale needs api 2026-07 and 2k or 4k")
        body: dict[str, object] = {"mediaGenerationId": media_generation_id,
                                   "resolution": resolution}
        if captcha_retry is not None and spoken.captcha_field:
            body[spoken.captcha_field] = captcha_retry
        summary = f"POST /images/upscale {resolution}"
        response = await self._send(
            "POST",
            "/images/upscale",
            summary=summary,
            timeout=self.timeouts.upscale,
            body=json.dumps(body).encode("ascii"),
            content_type="application/json",
        )
        return self._parse(response, summary,
                           functools.partial(parse_upscaled, resolution=resolution))

    async def upload_asset(self, email: str, data: bytes, content_type: str) -> UploadedAsset:
        """``POST /assets/{email}``: upload a reference image (at most 20 MB).

        PNG or JPEG; WebP too in 2026-07. Empty data, another type, bytes that do not
        match the type, or more than 20 MB raise ``InvalidRequestError`` before
        anything is sent. Both shapes of the answer are read.
        """
        mime = content_type.split(";", maxsplit=1)[0].strip().lower()
        path = f"/assets/{_quote_email(email)}"
        summary = f"POST {path} {mime or '?'} {len(data)} bytes"
        _check_upload(data, mime, summary, self.spoken.upload_types)
        response = await self._send(
            "POST",
            path,
            summary=summary,
            timeout=self.timeouts.upload,
            body=data,
            content_type=mime,
        )
        return self._parse(response, summary, parse_uploaded_asset)

    async def accounts(self) -> dict[str, AccountInfo]:
        """``GET /accounts``: every configured account keyed by email, with its health."""
        summary = "GET /accounts"
        response = await self._send(
            "GET", "/accounts", summary=summary, timeout=self.timeouts.accounts
        )
        return self._parse(response, summary, parse_accounts)

    async def account(self, email: str) -> AccountInfo:
        """``GET /accounts/{email}``: one account's health (404 if it is not configured)."""
        path = f"/accounts/{_quote_email(email)}"
        summary = f"GET {path}"
        response = await self._send("GET", path, summary=summary, timeout=self.timeouts.accounts)
        return self._parse(response, summary, functools.partial(parse_account, email=email))

    # -- plumbing ----------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        timeout: float,
        body: bytes = b"",
        content_type: str | None = None,
        model: str | None = None,
    ) -> HTTPResponse:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "User-Agent": self.user_agent,
            "Accept": "application/json",
        }
        if content_type:
            headers["Content-Type"] = content_type
        request = HTTPRequest(method, self.base_url + path, headers, body, timeout)
        safe_summary = self.scrub(summary)
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                response = await self._transport.send(request)
        except TRANSPORT_EXCEPTIONS as exc:
            failure = transport_error(exc, request=summary, timeout=timeout, scrub=self.scrub)
            logger.info(
                "%s -> %s (%.2f s)", safe_summary, failure.reason, time.monotonic() - started
            )
            raise failure from exc
        logger.debug(
            "%s -> %d (%.2f s, %d bytes)",
            safe_summary,
            response.status,
            time.monotonic() - started,
            len(response.body),
        )
        if not 200 <= response.status < 300:
            error = error_for_status(
                response.status, response.body, request=summary, scrub=self.scrub,
                dialect_name=self.dialect, headers=response.headers, model=model,
            )
            logger.info("%s -> %d %s", safe_summary, response.status, error.reason)
            raise error
        return response

    def _parse(self, response: HTTPResponse, summary: str, parse: Parser[T_co]) -> T_co:
        try:
            result = parse(response.body, request=summary)
            self._refuse_echo(result, summary)
            return result
        except ResponseError as exc:
            exc.status = response.status
            exc.message = self.scrub(exc.message)
            exc.args = (exc.message,)
            exc.request = self.scrub(exc.request) if exc.request else exc.request
            exc.reason = self.scrub(exc.reason) if exc.reason else exc.reason
            logger.info("%s -> %d %s", self.scrub(summary), response.status, exc.reason)
            raise

    def _refuse_echo(self, result: object, summary: str) -> None:
        """A success whose kept texts (ids, account health) hold the token is not kept."""
        if any(self._scrub.reveals(text) for text in _kept_texts(result)):
            raise ResponseError(
                "malformed response: the answer holds the API token; it was not kept",
                reason="token echoed", request=summary,
                hint="check that FLOWPIPE_API_URL points at the API and not at a proxy",
            )


def _kept_texts(result: object) -> list[str]:
    """The strings of a parsed answer that reach the cache, the manifest or a log."""
    if isinstance(result, ImageResult | ParsedGeneration):
        return [i.media_generation_id for i in result.images]
    if isinstance(result, UploadedAsset):
        return [result.media_generation_id]
    if isinstance(result, AccountInfo):
        return [result.email, result.health]
    if isinstance(result, dict):
        return [t for info in result.values() for t in _kept_texts(info)]
    return []


def _check_dialect(name: str) -> str:
    try:
        return dialect(name).name
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _quote_email(email: str) -> str:
    if not email or not email.strip():
        raise InvalidRequestError(
            "no account email given", reason="empty email", hint="name the account to use"
        )
    return quote(email, safe="@")


def _check_upload(data: bytes, mime: str, summary: str, types: tuple[str, ...]) -> None:
    """Refuse what the API would refuse, before a byte is sent."""
    problem: str | None = None
    if mime not in types:
        problem = f"content type {mime!r} is not {' or '.join(types)}"
    elif not data:
        problem = "the file is empty"
    elif len(data) > MAX_UPLOAD_BYTES:
        problem = f"{len(data)} bytes is more than the 20 MB the API accepts"
    elif mime_type(data) != mime:  # told by the bytes (flowpipe.imagebytes)
        problem = f"the bytes are not a {mime.removeprefix('image/').upper()} file"
    if problem is not None:
        names = [t.removeprefix("image/").upper().replace("WEBP", "WebP") for t in types]
        kinds = " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise InvalidRequestError(
            f"cannot upload: {problem}",
            reason=problem,
            hint=f"upload a {kinds} file of at most 20 MB",
            request=summary,
        )


def client_from_env(
    env: Mapping[str, str] | None = None,
    *,
    transport: Transport | None = None,
    timeouts: Timeouts = Timeouts(),
    dialect: str = DEFAULT_DIALECT,
) -> FlowClient:
    """A client for ``$FLOWPIPE_API_URL`` (default: useapi.net) with ``$USEAPI_TOKEN``."""
    source = os.environ if env is None else env
    token = source.get(ENV_TOKEN, "").strip()
    if not token:
        raise UsageError(
            f"{ENV_TOKEN} is not set", hint=f"export {ENV_TOKEN} with your useapi.net API token"
        )
    base_url = source.get(ENV_API_URL, "").strip() or DEFAULT_BASE_URL
    return FlowClient(
        base_url=base_url, token=token, transport=transport, timeouts=timeouts, dialect=dialect
    )
