"""The token never leaves through an echo in another encoding, nor through the base URL.

A server (or a proxy) may echo the Authorization header back URL-encoded, HTML-escaped,
JSON-escaped or in base64 (issue 15, item 7), and a base URL may carry credentials
(item 6). Every one of these must be hidden or refused before any text is kept or shown.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from flowpipe.api import FlowClient, HTTPResponse, ImageRequest, check_base_url
from flowpipe.errors import APIError, ResponseError, UsageError

from .builders import BASE, MakeClient, images_doc, json_response

SECRET = "k3y/Tok+en=v&l<ue>\"q'%20~Z9"  # every character class the encodings treat apart


def _b64(data: bytes, *, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()


ENCODINGS: dict[str, str] = {
    "raw": SECRET,
    "url": quote(SECRET, safe=""),
    "url-lower-hex": re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), quote(SECRET, safe="")),
    "url-plus": quote_plus(SECRET),
    "url-twice": quote(quote(SECRET, safe=""), safe=""),
    "html": html.escape(SECRET),
    "html-decimal": "".join(f"&#{ord(c)};" for c in SECRET),
    "html-hex": "".join(f"&#x{ord(c):x};" for c in SECRET),
    "json": json.dumps(SECRET)[1:-1],
    "json-unicode": "".join(f"\\u{ord(c):04x}" for c in SECRET),
    "json-slash": json.dumps(SECRET)[1:-1].replace("/", "\\/"),
    "base64": _b64(SECRET.encode()),
    "base64-urlsafe": _b64(SECRET.encode(), urlsafe=True),
    "base64-bearer": _b64(f"Bearer {SECRET}".encode()),
    "base64-basic": _b64(f"user:{SECRET}".encode()),
    "base64-offset-2": _b64(f"ab{SECRET}cd".encode()),
    "hex": SECRET.encode().hex(),
    "hex-upper": SECRET.encode().hex().upper(),
}


def _pieces(encoded: str) -> list[str]:
    """Runs of the encoding long enough to carry much of the secret."""
    return [encoded[i:i + 12] for i in range(0, max(len(encoded) - 11, 1), 6)]


def client_for(response: HTTPResponse) -> FlowClient:
    from flowpipe.api import MockTransport

    return FlowClient(base_url=BASE, token=SECRET, transport=MockTransport(lambda r: response))


@pytest.mark.parametrize("encoded", ENCODINGS.values(), ids=ENCODINGS.keys())
@pytest.mark.parametrize("status", [400, 401, 500, 502])
async def test_an_echoed_token_is_hidden_in_every_encoding(
    encoded: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flowpipe")
    body = json.dumps({"error": f"rejected header Authorization: Bearer {encoded} (see logs)"})
    client = client_for(HTTPResponse(status, {}, body.encode()))
    with pytest.raises(APIError) as caught:
        await client.generate(ImageRequest("a boat"))
    error = caught.value
    texts = [str(error), repr(error), error.message, str(error.reason), repr(error.body),
             caplog.text]
    for text in texts:
        for piece in (SECRET, encoded, *_pieces(encoded)):
            assert piece not in text, (piece, text)


@pytest.mark.parametrize("encoded", ENCODINGS.values(), ids=ENCODINGS.keys())
async def test_an_echoed_token_in_a_plain_text_answer_is_hidden(encoded: str) -> None:
    client = client_for(HTTPResponse(502, {}, f"<pre>upstream said {encoded}</pre>".encode()))
    with pytest.raises(APIError) as caught:
        await client.generate(ImageRequest("a boat"))
    for piece in (SECRET, encoded, *_pieces(encoded)):
        assert piece not in str(caught.value) and piece not in repr(caught.value.body)


@pytest.mark.parametrize(
    "encoded", [ENCODINGS["raw"], ENCODINGS["url"], ENCODINGS["base64"], ENCODINGS["json"]],
    ids=["raw", "url", "base64", "json"],
)
async def test_a_success_that_echoes_the_token_is_refused_not_kept(encoded: str) -> None:
    """An id or a health text holding the token would land in the manifest and the log."""
    doc: Any = images_doc(1)
    doc["imagePanels"][0]["generatedImages"][0]["mediaGenerationId"] = {
        "mediaGenerationId": f"user:1-image:{encoded}"
    }
    client = client_for(json_response(200, doc))
    with pytest.raises(ResponseError) as caught:
        await client.generate(ImageRequest("a boat"))
    assert "holds the API token" in str(caught.value)
    accounts = client_for(json_response(200, {"me@x.io": {"health": f"cookie {encoded}"}}))
    with pytest.raises(ResponseError):
        await accounts.accounts()


async def test_ordinary_answers_are_untouched(make_client: MakeClient) -> None:
    client, _ = make_client(lambda r: json_response(400, {"error": "prompt is required"}))
    with pytest.raises(APIError) as caught:
        await client.generate(ImageRequest("a boat"))
    assert caught.value.reason == "prompt is required"
    assert caught.value.body == {"error": "prompt is required"}


# -- item 6: the base URL -----------------------------------------------------------------

URL_LEAKS = {
    "user-and-password": f"http://alice:{quote(SECRET, safe='')}@127.0.0.1:9/v1/google-flow",
    "password-only": f"https://:{quote(SECRET, safe='')}@api.useapi.net/v1/google-flow",
    "user-only": f"https://{quote(SECRET, safe='')}@api.useapi.net/v1/google-flow",
    "token-in-path": f"https://api.useapi.net/{quote(SECRET, safe='')}/v1/google-flow",
    "token-in-query": f"https://api.useapi.net/v1/google-flow?key={quote(SECRET, safe='')}",
}


@pytest.mark.parametrize("url", URL_LEAKS.values(), ids=URL_LEAKS.keys())
def test_a_base_url_with_credentials_is_refused_without_echo(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        FlowClient(base_url=url, token=SECRET)
    with pytest.raises(UsageError):
        check_base_url(url, token=SECRET)
    text = str(caught.value)
    assert "FLOWPIPE_API_URL" in text
    for piece in (SECRET, quote(SECRET, safe=""), "alice"):
        assert piece not in text


def test_the_refusal_says_what_to_do_for_credentials() -> None:
    with pytest.raises(UsageError) as caught:
        check_base_url("http://me:pw-123456@host.test/v1/google-flow")
    assert "credentials" in str(caught.value) and "USEAPI_TOKEN" in str(caught.value)
    assert "pw-123456" not in str(caught.value)
