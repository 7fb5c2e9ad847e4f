"""The asyncio HTTP client for the Google Flow image API (useapi.net).

``FlowClient`` sends typed requests through a ``Transport`` (aiohttp for real, a
function for tests) and returns typed results or a ``flowpipe.errors.APIError``. It
speaks either dialect of ``flowpipe.dialects``. See docs/api-client.md.
"""

from __future__ import annotations

from flowpipe.api.client import (
    DEFAULT_BASE_URL,
    ENV_API_URL,
    ENV_TOKEN,
    MAX_UPLOAD_BYTES,
    UPLOAD_TYPES,
    USER_AGENT,
    FlowClient,
    Timeouts,
    check_base_url,
    client_from_env,
)
from flowpipe.api.errors import error_for_status, retry_after, transport_error
from flowpipe.api.fetch import FetchPolicy
from flowpipe.api.models import (
    AccountInfo,
    GeneratedImage,
    ImageRequest,
    ImageResult,
    UploadedAsset,
    UpscaledImage,
)
from flowpipe.api.transport import (
    AiohttpTransport,
    Handler,
    HTTPRequest,
    HTTPResponse,
    MockTransport,
    Transport,
)
from flowpipe.imagebytes import is_jpeg, is_png, sniff_image

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_API_URL",
    "ENV_TOKEN",
    "MAX_UPLOAD_BYTES",
    "UPLOAD_TYPES",
    "USER_AGENT",
    "AccountInfo",
    "AiohttpTransport",
    "FetchPolicy",
    "FlowClient",
    "GeneratedImage",
    "HTTPRequest",
    "HTTPResponse",
    "Handler",
    "ImageRequest",
    "ImageResult",
    "MockTransport",
    "Timeouts",
    "Transport",
    "UploadedAsset",
    "UpscaledImage",
    "check_base_url",
    "client_from_env",
    "error_for_status",
    "is_jpeg",
    "is_png",
    "retry_after",
    "sniff_image",
    "transport_error",
]
