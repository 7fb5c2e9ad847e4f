"""The Flow API as a plain function, for whole runs on a virtual clock over a MockTransport.

No socket and no real sleep: a generation takes ``latency`` API seconds of the
``VirtualClock``, so a run of minutes of API time ends in milliseconds. It keeps the
rules the engine reacts to (DESIGN section 1): capacity per account (429/503 at once),
ids owned by the account that made or uploaded them (403 otherwise), unknown accounts
(404), broken ones (596), a bad token (401), credits (402), moderation by a marker word
and at a rate, and injected resets. Every request is logged for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from flowpipe.api import HTTPRequest, HTTPResponse, MockTransport
from flowpipe.engine.clock import VirtualClock
from flowpipe.sim.bodies import (
    MODERATED_500,
    REJECTED_429,
    REJECTED_503,
    SESSION_596,
    UNAUTHORIZED,
    UNSAFE_400,
    account_not_found,
    no_credits,
    unauthorized_reference,
)

TOKEN = "fake-api-secret-token-4d2a"  # distinctive: scanned for in every output
BASE_URL = "http://fake.invalid/v1/google-flow"
SIZES = {"landscape": (16, 9), "portrait": (9, 16), "square": (12, 12)}


class Reset(ConnectionResetError):
    """What the transport raises for an injected connection reset."""


@dataclass
class FakeAPI:
    """Answers ``/accounts``, ``/assets/{email}`` and ``/images`` like the real API would."""

    clock: VirtualClock
    accounts: tuple[str, ...] = ("sim@example.com",)
    broken: tuple[str, ...] = ()
    token: str = TOKEN
    capacity: int = 20
    latency: tuple[float, float] = (10.0, 20.0)
    credits: int | None = None
    moderation_word: str = "forbidden"
    moderation_rate: float = 0.0
    fault_rate: float = 0.0
    reject_status: str = "mixed"
    seed: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, account)
    statuses: Counter[str] = field(default_factory=Counter)
    uploads: Counter[tuple[str, str]] = field(default_factory=Counter)  # (account, sha256)
    owners: dict[str, str] = field(default_factory=dict)  # media id -> account
    in_flight: Counter[str] = field(default_factory=Counter)
    generations: int = 0
    refuse_once: set[str] = field(default_factory=set)  # accounts that 403 one reference once

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def transport(self) -> MockTransport:
        return MockTransport(self)

    @property
    def images_requests(self) -> int:
        return sum(1 for path, _ in self.requests if path == "/images")

    def images_statuses(self) -> Counter[str]:
        return Counter({k.removeprefix("images "): v for k, v in self.statuses.items()
                        if k.startswith("images ")})

    async def __call__(self, request: HTTPRequest) -> HTTPResponse:
        path = request.url.removeprefix(BASE_URL)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._answer(path, 401, UNAUTHORIZED)
        if path == "/accounts":
            health = {a: {"health": SESSION_596["error"] if a in self.broken else "OK"}
                      for a in (*self.accounts, *self.broken)}
            return self._answer(path, 200, health)
        if path.startswith("/assets/"):
            return self._upload(path.removeprefix("/assets/"), request.body)
        return await self._images(json.loads(request.body))

    def _answer(self, path: str, status: int, body: Any) -> HTTPResponse:
        kind = "images" if path == "/images" else path.split("/")[1]
        self.statuses[f"{kind} {status}"] += 1
        self.statuses[str(status)] += 1
        return HTTPResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())

    def _account(self, path: str, email: str) -> HTTPResponse | None:
        self.requests.append((path, email))
        if email in self.broken:
            return self._answer(path, 596, SESSION_596)
        if email not in self.accounts:
            return self._answer(path, 404, account_not_found(email))
        return None

    def _new_id(self, email: str, what: str) -> str:
        media_id = f"user:1-email:{email.encode().hex()}-image:{what}{len(self.owners)}"
        self.owners[media_id] = email
        return media_id

    def _upload(self, email: str, data: bytes) -> HTTPResponse:
        path = "/assets"
        refused = self._account(path, email)
        if refused is not None:
            return refused
        self.uploads[(email, hashlib.sha256(data).hexdigest())] += 1
        body = {"mediaGenerationId": {"mediaGenerationId": self._new_id(email, "up")},
                "width": 8, "height": 8}
        return self._answer(path, 200, body)

    async def _images(self, body: dict[str, Any]) -> HTTPResponse:
        path, email = "/images", str(body.get("email"))
        refused = self._account(path, email) or self._references(email, body)
        if refused is not None:
            return refused
        if self.credits is not None and self.generations + sum(self.in_flight.values()) \
                >= self.credits:  # a credit is spent when a generation is admitted
            return self._answer(path, 402, no_credits())
        if self.in_flight[email] >= self.capacity:
            status = self._rng.choice((429, 503)) if self.reject_status == "mixed" else 429
            return self._answer(path, status, REJECTED_429 if status == 429 else REJECTED_503)
        self.in_flight[email] += 1
        try:
            await self.clock.sleep(self._rng.uniform(*self.latency))
        finally:
            self.in_flight[email] -= 1
        return self._generated(path, email, body)

    def _references(self, email: str, body: dict[str, Any]) -> HTTPResponse | None:
        refs = [v for k, v in sorted(body.items()) if k.startswith(("styleRef", "contextRef"))]
        for ref in refs:
            owner = self.owners.get(ref)
            if owner != email or email in self.refuse_once:
                self.refuse_once.discard(email)
                return self._answer("/images", 403, unauthorized_reference("user:1", ref))
        return None

    def _generated(self, path: str, email: str, body: dict[str, Any]) -> HTTPResponse:
        if self._rng.random() < self.fault_rate:
            self.statuses["images reset"] += 1
            raise Reset("connection reset by the fake API")
        prompt = str(body["prompt"])
        if self.moderation_word in prompt or self._rng.random() < self.moderation_rate:
            if body.get("model") == "nano-banana":
                return self._answer(path, 500, MODERATED_500)
            return self._answer(path, 400, UNSAFE_400)
        self.generations += 1
        items = [self._image(email, body, i) for i in range(int(body.get("count") or 1))]
        return self._answer(path, 200, {"imagePanels": [{"prompt": prompt,
                                                         "generatedImages": items}]})

    def _image(self, email: str, body: dict[str, Any], index: int) -> dict[str, Any]:
        digest = hashlib.sha256(json.dumps([body.get(k) for k in sorted(body) if k != "email"])
                                .encode() + bytes([index])).digest()
        buffer = io.BytesIO()
        Image.new("RGB", SIZES[str(body.get("aspectRatio", "square"))], tuple(digest[:3])).save(
            buffer, "JPEG")
        return {
            "encodedImage": base64.b64encode(buffer.getvalue()).decode(),
            "seed": int(body.get("seed") or 1) + index,
            "mediaGenerationId": {"mediaGenerationId": self._new_id(email, "gen")},
            "prompt": body["prompt"],
            "modelNameType": "IMAGEN_3_5",
            "aspectRatio": "IMAGE_ASPECT_RATIO_SQUARE",
        }
