"""The 2026-07 Flow API as a plain function, for whole runs on a virtual clock.

``FakeAPI2026`` keeps ``FakeAPI``'s rules (capacity per account, ids owned by the account
that made or uploaded them, 401/402/404/596) and speaks 2026-07 on top: ``media[]``
answers with signed ``fifeUrl``s it serves itself (some issued already expired, on
demand) and some images inline, PNG for some images, ``POST /images/upscale``, the 429
reasons (an account throttled from an API second on, a per-model daily quota that ends
at midnight UTC by the answer's ``Date``, ``no_eligible_account`` until a time) and
refused captchas. Every request is logged with its API time for assertions.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from flowpipe.api import HTTPRequest, HTTPResponse
from flowpipe.dialects import (
    PER_MODEL_DAILY_QUOTA_REACHED,
    USER_REQUESTS_THROTTLED,
)
from flowpipe.sim.bodies import (
    captcha_refused,
    error,
    no_eligible_account,
    rejected_429,
    unauthorized_reference,
)

from .fakeapi import BASE_URL, FakeAPI

FIFE = "http://fake.invalid/fife/"
PAUSE = 1800.0  # what the service takes a throttled account out for
SIZES = {"16:9": (16, 9), "4:3": (12, 9), "1:1": (12, 12), "3:4": (9, 12), "9:16": (9, 16)}
DAY = 86400.0


@dataclass
class Sent:
    """One request the fake API received."""

    t: float  # API seconds
    path: str
    account: str
    model: str | None


@dataclass
class FakeAPI2026(FakeAPI):
    """See the module docstring; ``wall_start`` is the UTC epoch time at API second 0."""

    throttle: dict[str, float] = field(default_factory=dict)  # account -> from API second
    model_quota: dict[str, int] = field(default_factory=dict)  # model -> per account per day
    upscale_quota: int | None = None  # upscales per account per day, then the model quota 429
    no_eligible_until: float = 0.0  # every request before this API second: no_eligible
    captcha_fails: dict[str, int] = field(default_factory=dict)  # prompt word -> refusals
    expire_once: set[str] = field(default_factory=set)  # prompt words: first URLs expired
    wall_start: float = 1784160000.0  # 2026-07-16T00:00:00Z
    sent: list[Sent] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # /images and upscale bodies
    paused_hits: Counter[str] = field(default_factory=Counter)
    fife_reads: Counter[str] = field(default_factory=Counter)
    generated_reuploads: Counter[str] = field(default_factory=Counter)
    upscales: int = 0
    capacity_429: dict[str, Any] = field(default_factory=lambda: rejected_429(None))
    _paused: dict[tuple[str, str | None], tuple[str, float]] = field(default_factory=dict)
    _made_by: dict[str, set[str]] = field(default_factory=dict)  # sha256 -> accounts
    _day_counts: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    _urls: dict[str, tuple[bytes, float]] = field(default_factory=dict)  # id -> bytes, expiry
    _generated_ids: set[str] = field(default_factory=set)

    def now(self) -> float:
        return self.clock.time()

    def wall(self) -> float:
        return self.wall_start + self.now()

    async def __call__(self, request: HTTPRequest) -> HTTPResponse:
        if request.url.startswith(FIFE):
            return self._fife(request)
        response = await super().__call__(request)
        headers = {**response.headers, "date": email.utils.formatdate(self.wall(), usegmt=True)}
        return HTTPResponse(response.status, headers, response.body)

    def _answer(self, path: str, status: int, body: Any,
                headers: dict[str, str] | None = None) -> HTTPResponse:
        answer = super()._answer(path, status, body)
        return HTTPResponse(status, {**answer.headers, **(headers or {})}, answer.body)

    # -- requests ------------------------------------------------------------------------

    def _upload(self, email_: str, data: bytes) -> HTTPResponse:
        sha = hashlib.sha256(data).hexdigest()
        if email_ in self._made_by.get(sha, ()):
            self.generated_reuploads[email_] += 1
        answer = super()._upload(email_, data)
        if answer.status == 200:  # the 2026 shape of the assets answer
            media_id = json.loads(answer.body)["mediaGenerationId"]["mediaGenerationId"]
            body = json.dumps({"media": {"name": media_id}}).encode()
            return HTTPResponse(200, answer.headers, body)
        return answer

    async def _images(self, body: dict[str, Any]) -> HTTPResponse:
        self.bodies.append(body)
        if "resolution" in body:
            return await self._upscale(body)
        account, model = str(body.get("email")), body.get("model")
        self.sent.append(Sent(self.now(), "/images", account, model))
        refused = self._quota(account, model) or self._captcha(str(body["prompt"]))
        if refused is not None:
            self.requests.append(("/images", account))
            return refused
        return await super()._images(body)

    def _references(self, email_: str, body: dict[str, Any]) -> HTTPResponse | None:
        refs = [v for k, v in sorted(body.items()) if k.startswith("reference_")]
        for ref in refs:
            if self.owners.get(ref) != email_:
                return self._answer("/images", 403, unauthorized_reference("user:1", ref))
        return None

    def _quota(self, account: str, model: str | None) -> HTTPResponse | None:
        """The 429 with a reason this request gets, if any (and the pause it starts)."""
        now = self.now()
        if now < self.no_eligible_until:
            wait = math.ceil(self.no_eligible_until - now)
            return self._answer("/images", 429, no_eligible_account(wait),
                                {"retry-after": str(wait)})
        for key in ((account, None), (account, model)):
            held = self._paused.get(key)
            if held is not None and now < held[1]:
                self.paused_hits[account] += 1
                return self._answer("/images", 429, rejected_429(held[0]))
        start = self.throttle.get(account)
        if start is not None and now >= start:
            del self.throttle[account]
            self._paused[(account, None)] = (USER_REQUESTS_THROTTLED, now + PAUSE)
            return self._answer("/images", 429, rejected_429(USER_REQUESTS_THROTTLED))
        limit = self.model_quota.get(str(model))
        if limit is not None and self._day_counts[(account, str(model), self._day())] >= limit:
            until = now + (self._day() + 1) * DAY - self.wall()
            self._paused[(account, model)] = (PER_MODEL_DAILY_QUOTA_REACHED, until)
            return self._answer("/images", 429, rejected_429(PER_MODEL_DAILY_QUOTA_REACHED))
        return None

    def _day(self) -> int:
        return math.floor(self.wall() / DAY)

    def _captcha(self, prompt: str) -> HTTPResponse | None:
        for word, left in self.captcha_fails.items():
            if word in prompt and left > 0:
                self.captcha_fails[word] = left - 1
                return self._answer("/images", 403, captcha_refused(3))
        return None

    # -- answers -------------------------------------------------------------------------

    def _generated(self, path: str, email_: str, body: dict[str, Any]) -> HTTPResponse:
        self._day_counts[(email_, str(body.get("model")), self._day())] += 1
        self.generations += 1
        prompt = str(body["prompt"])
        stale = next((w for w in self.expire_once if w in prompt), None)
        if stale is not None:
            self.expire_once.discard(stale)
        media = [self._media(email_, body, i, stale is not None)
                 for i in range(int(body.get("count") or 1))]
        return self._answer(path, 200, {"jobId": "job", "media": media})

    def _media(self, email_: str, body: dict[str, Any], index: int, stale: bool) -> Any:
        digest = hashlib.sha256(json.dumps([body.get(k) for k in sorted(body) if k != "email"])
                                .encode() + bytes([index])).digest()
        png = digest[3] % 2 == 1
        buffer = io.BytesIO()
        Image.new("RGB", SIZES[str(body.get("aspectRatio", "1:1"))], tuple(digest[:3])).save(
            buffer, "PNG" if png else "JPEG")
        data = buffer.getvalue()
        media_id = self._new_id(email_, "gen")
        self._generated_ids.add(media_id)
        self._made_by.setdefault(hashlib.sha256(data).hexdigest(), set()).add(email_)
        generated: dict[str, Any] = {"seed": int(body.get("seed") or 1) + index,
                                     "mediaGenerationId": media_id, "prompt": body["prompt"]}
        if index % 2 and not stale:
            generated["encodedImage"] = base64.b64encode(data).decode()
        else:
            url_id = f"u{len(self._urls)}"
            self._urls[url_id] = (data, self.now() + (-1.0 if stale else 6 * 3600.0))
            generated["fifeUrl"] = f"{FIFE}{url_id}?Signature=abc"
        return {"name": "media", "image": {"generatedImage": generated}}

    def _fife(self, request: HTTPRequest) -> HTTPResponse:
        url_id = request.url.removeprefix(FIFE).split("?", 1)[0]
        data, expires = self._urls.get(url_id, (b"", -math.inf))
        if self.now() > expires:
            self.fife_reads["expired"] += 1
            return HTTPResponse(403, {}, b"signed URL expired")
        self.fife_reads["ok"] += 1
        return HTTPResponse(200, {"content-type": "image/jpeg"}, data)

    async def _upscale(self, body: dict[str, Any]) -> HTTPResponse:
        media_id = str(body["mediaGenerationId"])
        account = self.owners.get(media_id, "?")
        self.sent.append(Sent(self.now(), "/images/upscale", account, None))
        self.requests.append(("/images/upscale", account))
        if media_id not in self._generated_ids:
            return self._answer("/images", 400, error("Only generated images can be upscaled"))
        refused = self._quota(account, None) or self._upscale_quota(account)
        if refused is not None:
            return refused
        self._day_counts[(account, "upscale", self._day())] += 1
        await self.clock.sleep(15.0)
        buffer = io.BytesIO()
        Image.new("RGB", (64, 36), (9, 9, 9)).save(buffer, "JPEG")
        self.upscales += 1
        return self._answer("/images", 200,
                            {"encodedImage": base64.b64encode(buffer.getvalue()).decode()})

    def _upscale_quota(self, account: str) -> HTTPResponse | None:
        """The per-model quota answer to an upscale, once the day's upscales are used up."""
        if self.upscale_quota is None:
            return None
        if self._day_counts[(account, "upscale", self._day())] < self.upscale_quota:
            return None
        return self._answer("/images", 429, rejected_429(PER_MODEL_DAILY_QUOTA_REACHED))

    # -- for assertions ------------------------------------------------------------------

    def sent_to(self, account: str, start: float, end: float, *, model: str | None = None) -> int:
        """Requests that reached ``account`` (for ``model``, if given) within [start, end)."""
        return sum(1 for s in self.sent if s.account == account and start <= s.t < end
                   and (model is None or s.model == model))


__all__ = ["BASE_URL", "PAUSE", "FakeAPI2026", "Sent"]
