"""2xx bodies are checked field by field; anything off is a ResponseError naming it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from flowpipe.api.responses import (
    parse_account,
    parse_accounts,
    parse_image_result,
    parse_uploaded_asset,
)
from flowpipe.errors import ResponseError

from .builders import images_doc, make_jpeg

REQ = "POST /images imagen-4 'x'"


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_parses_images_and_decodes_jpegs() -> None:
    doc = images_doc(count=3)
    result = parse_image_result(encode(doc), request=REQ)
    assert len(result.images) == 3
    first = result.images[0]
    assert first.data == base64.b64decode(
        doc["imagePanels"][0]["generatedImages"][0]["encodedImage"]
    )
    assert (first.seed, first.media_generation_id) == (100, "user:791-email:6a6f-image:CAMa0")
    assert first.model_name_type == "IMAGEN_3_5"
    assert first.aspect_ratio == "IMAGE_ASPECT_RATIO_LANDSCAPE"
    assert first.prompt == "A serene mountain landscape"


def test_raw_keeps_everything_but_the_image_data() -> None:
    doc = images_doc(count=2)
    raw = parse_image_result(encode(doc), request=REQ).raw
    items = raw["imagePanels"][0]["generatedImages"]
    assert all("encodedImage" not in item for item in items)
    assert items[1]["workflowId"] == "workflow_abc123"
    assert raw["imagePanels"][0]["prompt"] == "A serene mountain landscape"
    # the caller's document is not modified
    assert "encodedImage" in doc["imagePanels"][0]["generatedImages"][0]


def test_images_from_several_panels_are_flattened_in_order() -> None:
    doc = images_doc(count=1)
    doc["imagePanels"].append(images_doc(count=2)["imagePanels"][0])
    assert len(parse_image_result(encode(doc), request=REQ).images) == 3


def test_base64_with_line_breaks_is_accepted() -> None:
    doc = images_doc(count=1)
    item = doc["imagePanels"][0]["generatedImages"][0]
    text = item["encodedImage"]
    item["encodedImage"] = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert parse_image_result(encode(doc), request=REQ).images[0].data == make_jpeg()


Mutation = Callable[[dict[str, Any]], None]


def _item(doc: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = doc["imagePanels"][0]["generatedImages"][0]
    return item


BAD_IMAGE_BODIES: list[Any] = [
    pytest.param(lambda d: d.pop("imagePanels"), "imagePanels is missing", id="no-panels"),
    pytest.param(
        lambda d: d.update(imagePanels={}), "imagePanels: expected an array", id="panels-not-list"
    ),
    pytest.param(lambda d: d.update(imagePanels=[]), "no generated images", id="zero-images"),
    pytest.param(
        lambda d: d["imagePanels"].__setitem__(0, "x"),
        "imagePanels[0]: expected an object, got str",
        id="panel-not-object",
    ),
    pytest.param(
        lambda d: _item(d).pop("encodedImage"),
        "generatedImages[0].encodedImage is missing",
        id="no-encoded-image",
    ),
    pytest.param(
        lambda d: _item(d).update(encodedImage=5),
        "encodedImage: expected a string, got int",
        id="encoded-image-int",
    ),
    pytest.param(
        lambda d: _item(d).update(encodedImage="!!!not base64!!!"),
        "not valid base64",
        id="invalid-base64",
    ),
    pytest.param(
        lambda d: _item(d).update(encodedImage="ÿØÿ"), "not valid base64", id="non-ascii-base64"
    ),
    pytest.param(
        lambda d: _item(d).update(encodedImage=base64.b64encode(b"\x89PNG....").decode()),
        "not a complete JPEG",
        id="png-bytes",
    ),
    pytest.param(
        lambda d: _item(d).update(encodedImage=base64.b64encode(make_jpeg()[:-10]).decode()),
        "not a complete JPEG",
        id="truncated-jpeg",
    ),
    pytest.param(
        lambda d: _item(d).update(encodedImage=base64.b64encode(
            b"\xff\xd8\xff" + b"\x00garbage" * 10 + b"\xff\xd9").decode()),
        "not a readable JPEG image",
        id="markers-around-garbage",
    ),
    pytest.param(lambda d: _item(d).update(seed="1"), "seed: expected an integer", id="seed-str"),
    pytest.param(lambda d: _item(d).update(seed=True), "seed: expected an integer", id="seed-bool"),
    pytest.param(
        lambda d: _item(d).update(seed=-1), "seed: expected an integer >= 0", id="seed-negative"
    ),
    pytest.param(lambda d: _item(d).update(seed=1.5), "seed: expected an integer", id="seed-float"),
    pytest.param(
        lambda d: _item(d).update(mediaGenerationId="user:1"),
        "mediaGenerationId: expected an object",
        id="media-id-flat",
    ),
    pytest.param(
        lambda d: _item(d).update(mediaGenerationId={"mediaGenerationId": ""}),
        "expected a non-empty string",
        id="media-id-empty",
    ),
    pytest.param(
        lambda d: _item(d).pop("modelNameType"), "modelNameType is missing", id="no-model-name"
    ),
    pytest.param(
        lambda d: _item(d).update(aspectRatio=None),
        "aspectRatio: expected a string, got null",
        id="aspect-null",
    ),
    pytest.param(
        lambda d: d.update(imagePanels=None, error="quota") or d.pop("imagePanels"),
        "success status with an error: quota",
        id="200-with-error",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_IMAGE_BODIES)
def test_malformed_image_bodies_name_the_field(mutate: Mutation, message: str) -> None:
    doc = images_doc(count=1)
    mutate(doc)
    with pytest.raises(ResponseError) as caught:
        parse_image_result(encode(doc), request=REQ)
    assert message in str(caught.value)
    assert caught.value.request == REQ
    assert caught.value.retryable


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="cut-json"),
        pytest.param(b"\xff\xfe\xfd", id="not-text"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
        pytest.param(b'{"imagePanels": NaN}', id="nan"),
        pytest.param(b"null", id="null"),
    ],
)
def test_non_json_and_odd_json_are_response_errors(body: bytes) -> None:
    with pytest.raises(ResponseError):
        parse_image_result(body, request=REQ)


def test_upload_answer() -> None:
    body = encode(
        {
            "mediaGenerationId": {"mediaGenerationId": "user:1-email:2-image:3"},
            "width": 640,
            "height": 480,
        }
    )
    asset = parse_uploaded_asset(body, request="POST /assets/a@b.c")
    assert (asset.media_generation_id, asset.width, asset.height) == (
        "user:1-email:2-image:3",
        640,
        480,
    )


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(
            {"mediaGenerationId": {"mediaGenerationId": "m"}, "width": 0, "height": 4},
            id="zero-width",
        ),
        pytest.param({"mediaGenerationId": {"mediaGenerationId": "m"}, "width": 4}, id="no-height"),
        pytest.param({"width": 4, "height": 4}, id="no-id"),
        pytest.param([], id="array"),
    ],
)
def test_bad_upload_answers(doc: Any) -> None:
    with pytest.raises(ResponseError):
        parse_uploaded_asset(encode(doc), request="POST /assets/a@b.c")


def test_accounts_keyed_by_email() -> None:
    body = encode(
        {
            "a@b.c": {"health": "OK", "created": "2025"},
            "d@e.f": {"health": "Failed to refresh session."},
        }
    )
    accounts = parse_accounts(body, request="GET /accounts")
    assert sorted(accounts) == ["a@b.c", "d@e.f"]
    assert accounts["a@b.c"].ok and not accounts["d@e.f"].ok
    assert accounts["a@b.c"].raw["created"] == "2025"
    assert accounts["d@e.f"].health == "Failed to refresh session."


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param([], id="array"),
        pytest.param({"a@b.c": "OK"}, id="value-not-object"),
        pytest.param({"a@b.c": {"status": "OK"}}, id="no-health"),
        pytest.param({"a@b.c": {"health": 1}}, id="health-int"),
    ],
)
def test_bad_accounts_answers(doc: Any) -> None:
    with pytest.raises(ResponseError):
        parse_accounts(encode(doc), request="GET /accounts")


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"health": "OK", "email": "a@b.c"}, id="bare"),
        pytest.param({"a@b.c": {"health": "OK"}}, id="keyed"),
    ],
)
def test_one_account_bare_or_keyed(doc: Any) -> None:
    account = parse_account(encode(doc), email="a@b.c", request="GET /accounts/a@b.c")
    assert (account.email, account.ok) == ("a@b.c", True)


def test_one_account_of_another_email_is_malformed() -> None:
    with pytest.raises(ResponseError, match="health is missing"):
        parse_account(encode({"x@y.z": {"health": "OK"}}), email="a@b.c", request="r")
