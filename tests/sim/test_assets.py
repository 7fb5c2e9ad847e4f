"""POST /assets/{email}: PNG and JPEG in, a mediaGenerationId owned by that account out."""

from __future__ import annotations

import pytest

from flowpipe.sim.assets import MAX_UPLOAD_BYTES
from flowpipe.sim.ids import parse_id

from .helpers import API, PAGE_596, MakeSim, generate, image_bytes, stats, upload


@pytest.mark.parametrize(("fmt", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
async def test_upload_accepts_png_and_jpeg(make_sim: MakeSim, fmt: str, content_type: str) -> None:
    client = await make_sim()
    status, body = await upload(client, image_bytes(fmt, (64, 48)), content_type)
    assert status == 200
    assert (body["width"], body["height"]) == (64, 48)
    parsed = parse_id(body["mediaGenerationId"]["mediaGenerationId"])
    assert parsed is not None and parsed.email == "sim@example.com"
    assert stats(client)["uploads"] == 1


@pytest.mark.parametrize(
    ("data", "content_type", "text"),
    [
        (b"", "image/png", "File is empty"),
        (
            b"GIF89a....",
            "image/gif",
            "Unsupported Content-Type image/gif: use image/png or image/jpeg",
        ),
        (
            b"plain",
            "text/plain",
            "Unsupported Content-Type text/plain: use image/png or image/jpeg",
        ),
        (b"not an image at all", "image/png", "File is not a valid image"),
        (image_bytes("PNG"), "image/jpeg", "File content is not JPEG"),
        (b"\0" * (MAX_UPLOAD_BYTES + 1), "image/png", "File is too large: the maximum is 20 MB"),
    ],
    ids=["empty", "gif", "text", "garbage", "png-as-jpeg", "too-large"],
)
async def test_upload_rejects(make_sim: MakeSim, data: bytes, content_type: str, text: str) -> None:
    client = await make_sim()
    assert await upload(client, data, content_type) == (400, {"error": text})
    assert stats(client)["uploads"] == 0


async def test_upload_at_the_size_limit_is_read_in_full(make_sim: MakeSim) -> None:
    client = await make_sim()
    data = image_bytes("PNG")
    padded = data + b"\0" * (MAX_UPLOAD_BYTES - len(data))  # PNG readers ignore trailing bytes
    status, _ = await upload(client, padded, "image/png")
    assert status == 200


async def test_upload_to_an_unknown_account_is_404(make_sim: MakeSim) -> None:
    client = await make_sim()
    expected = {"error": "Google Flow account x@example.com not found"}
    assert await upload(client, image_bytes("PNG"), "image/png", "x@example.com") == (404, expected)


async def test_upload_to_a_broken_account_is_596(make_sim: MakeSim) -> None:
    client = await make_sim(broken_accounts=("b@example.com",))
    assert await upload(client, image_bytes("PNG"), "image/png", "b@example.com") == (596, PAGE_596)


async def test_upload_needs_the_token(make_sim: MakeSim) -> None:
    client = await make_sim()
    async with client.post(f"{API}/assets/sim@example.com", data=b"x") as response:
        assert response.status == 401


async def test_the_same_bytes_get_the_same_id_on_one_account_and_work_as_a_reference(
    make_sim: MakeSim,
) -> None:
    """Uploads are content-addressed per account (issue 13: a re-run re-uploads nothing)."""
    client = await make_sim(accounts=("sim@example.com", "b@example.com"))
    png = image_bytes("PNG")
    _, first = await upload(client, png, "image/png")
    _, again = await upload(client, png, "image/png")
    _, other = await upload(client, image_bytes("PNG", (65, 48)), "image/png")
    _, elsewhere = await upload(client, png, "image/png", email="b@example.com")
    ids = [body["mediaGenerationId"]["mediaGenerationId"]
           for body in (first, again, other, elsewhere)]
    assert ids[0] == ids[1]
    assert len(set(ids)) == 3
    status, _ = await generate(client, contextReference_1=ids[1], count=1,
                               email="sim@example.com")
    assert status == 200
