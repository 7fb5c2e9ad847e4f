"""Request bodies use the API page's names; values are immutable and safe to print."""

from __future__ import annotations

from typing import Any

import pytest

from flowpipe.api import AccountInfo, GeneratedImage, ImageRequest, Timeouts
from flowpipe.errors import InvalidRequestError


@pytest.mark.parametrize(
    ("request_", "body"),
    [
        pytest.param(ImageRequest("a cat"), {"prompt": "a cat"}, id="prompt-only"),
        pytest.param(
            ImageRequest("a cat", model="imagen-4", aspect_ratio="landscape", count=4, seed=0),
            {
                "prompt": "a cat",
                "model": "imagen-4",
                "aspectRatio": "landscape",
                "count": 4,
                "seed": 0,
            },
            id="seed-zero-kept",
        ),
        pytest.param(
            ImageRequest(
                "a cat",
                email="a@b.c",
                style_reference="user:1-email:x-image:s",
                context_references=("c1", "c2", "c3", "c4"),
            ),
            {
                "prompt": "a cat",
                "email": "a@b.c",
                "styleReference_1": "user:1-email:x-image:s",
                "contextReference_1": "c1",
                "contextReference_2": "c2",
                "contextReference_3": "c3",
                "contextReference_4": "c4",
            },
            id="references-numbered-from-1",
        ),
    ],
)
def test_to_json_uses_page_names(request_: ImageRequest, body: dict[str, Any]) -> None:
    assert request_.to_json() == body
    assert list(request_.to_json()) == list(body)


def test_context_list_is_frozen_to_a_tuple() -> None:
    refs = ["c1"]
    request = ImageRequest("x", context_references=refs)  # type: ignore[arg-type]
    refs.append("c2")
    assert request.context_references == ("c1",)
    assert hash(request) == hash(ImageRequest("x", context_references=("c1",)))


def test_more_than_four_context_references_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="at most 4"):
        ImageRequest("x", context_references=("a", "b", "c", "d", "e"))


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        pytest.param(ImageRequest("short", model="imagen-4"), "imagen-4 'short'", id="short"),
        pytest.param(
            ImageRequest("A serene mountain landscape at sunset", model="nano-banana"),
            "nano-banana 'A serene mountain lands…'",
            id="clipped",
        ),
        pytest.param(ImageRequest("x"), "default-model 'x'", id="no-model"),
    ],
)
def test_describe_is_short(request_: ImageRequest, text: str) -> None:
    assert request_.describe() == text


@pytest.mark.parametrize(
    ("health", "ok"),
    [
        pytest.param("OK", True, id="OK"),
        pytest.param("Failed to refresh session.", False, id="error-text"),
    ],
)
def test_account_ok_follows_health(health: str, ok: bool) -> None:
    assert AccountInfo("a@b.c", health, {"health": health}).ok is ok


def test_generated_image_repr_hides_bytes() -> None:
    image = GeneratedImage(
        b"\xff\xd8\xff" + b"\x00" * 5000 + b"\xff\xd9",
        1,
        "m",
        "IMAGEN_3_5",
        "p",
        "IMAGE_ASPECT_RATIO_SQUARE",
    )
    assert "5005 bytes" in repr(image)
    assert len(repr(image)) < 300


def test_timeouts_are_keyword_only_and_checked() -> None:
    assert Timeouts(generate=30).generate == 30
    with pytest.raises(TypeError):
        Timeouts(1.0)  # type: ignore[call-arg]
    for bad in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="upload"):
            Timeouts(upload=bad)
