"""Builders for API answers and images, shared by the client tests."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

from PIL import Image

from flowpipe.api import FlowClient, HTTPResponse, MockTransport

TOKEN = "sk-test-5ecret-t0ken-value"  # long enough to be scrubbed from every text
BASE = "https://api.example.test/v1/google-flow"


def make_jpeg(
    width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    """A real, tiny JPEG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_png(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (0, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_item(data: bytes | None = None, *, seed: int = 123456, index: int = 0) -> dict[str, Any]:
    """One ``generatedImages[]`` entry as the API page shows it."""
    encoded = base64.b64encode(data if data is not None else make_jpeg()).decode("ascii")
    return {
        "encodedImage": encoded,
        "seed": seed,
        "mediaGenerationId": {"mediaGenerationId": f"user:791-email:6a6f-image:CAMa{index}"},
        "prompt": "A serene mountain landscape",
        "modelNameType": "IMAGEN_3_5",
        "workflowId": "workflow_abc123",
        "aspectRatio": "IMAGE_ASPECT_RATIO_LANDSCAPE",
        "requestData": {
            "promptInputs": [{"textInput": "A serene mountain landscape"}],
            "imageGenerationRequestData": {"imageGenerationImageInputs": []},
        },
    }


def images_doc(count: int = 2) -> dict[str, Any]:
    return {
        "imagePanels": [
            {
                "prompt": "A serene mountain landscape",
                "generatedImages": [image_item(index=i, seed=100 + i) for i in range(count)],
            }
        ]
    }


def json_response(status: int, doc: Any, headers: dict[str, str] | None = None) -> HTTPResponse:
    return HTTPResponse(
        status, {"content-type": "application/json", **(headers or {})}, json.dumps(doc).encode()
    )


def google_error(code: int, message: str, status: str, reason: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return {"error": error}


#: The ``make_client`` fixture: ``make_client(handler, **client_kwargs)``.
MakeClient = Callable[..., tuple[FlowClient, MockTransport]]


def media_item(
    *,
    data: bytes | None = None,
    fife_url: str | None = None,
    seed: int = 42,
    index: int = 0,
    nested_id: bool = False,
) -> dict[str, Any]:
    """One 2026-07 ``media[]`` entry: bytes inline, behind a signed URL, or both."""
    media_id: Any = f"user:9-email:6a6f-image:NEW{index}"
    generated: dict[str, Any] = {
        "seed": seed,
        "mediaGenerationId": {"mediaGenerationId": media_id} if nested_id else media_id,
        "prompt": "a lighthouse",
        "modelNameType": "GEM_PIX_2",
        "aspectRatio": "IMAGE_ASPECT_RATIO_16_9",
    }
    if data is not None:
        generated["encodedImage"] = base64.b64encode(data).decode("ascii")
    if fife_url is not None:
        generated["fifeUrl"] = fife_url
    return {"name": f"media-{index}", "workflowId": "wf", "image": {"generatedImage": generated}}


def media_doc(*items: dict[str, Any]) -> dict[str, Any]:
    return {"jobId": "job-1", "media": list(items)}
