"""Signed image URLs (``fifeUrl``) that the simulator serves itself, and that expire.

A 2026-07 answer names most images by a URL instead of carrying their bytes. Here the
URL is ``{origin}/_sim/fife/{id}?Expires={API second}&Signature={HMAC}``: no token is
needed to read it (like Google's signed URLs), any change to the id or the expiry
breaks the signature (403), and after ``--fife-ttl`` API seconds it is refused (403)
even when intact. What an id stands for is kept as the recipe to draw it again (the
render spec, variant and format), not as bytes, so memory stays small however many
images go unread; the renderer's cache makes the usual immediate read cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

from flowpipe.sim.render import RenderSpec

__all__ = ["FifeEntry", "FifeStore"]

_MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class FifeEntry:
    """How to draw the image behind one URL again, and until when it may be read."""

    spec: RenderSpec
    index: int
    png: bool
    expires: float  # API seconds


class FifeStore:
    """Issues signed URLs and checks them; the key is new for every server."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[str, FifeEntry] = OrderedDict()
        self._counter = 0

    def issue(self, origin: str, entry: FifeEntry) -> str:
        """A signed URL on ``origin`` (``http://host:port``) for ``entry``."""
        self._counter += 1
        image_id = hashlib.blake2b(
            f"{self._counter}:{entry.spec.cache_key()}:{entry.index}".encode(), digest_size=12
        ).hexdigest()
        self._entries[image_id] = entry
        while len(self._entries) > _MAX_ENTRIES:
            self._entries.popitem(last=False)
        expires = f"{entry.expires:.3f}"
        signature = self._sign(image_id, expires)
        return f"{origin}/_sim/fife/{image_id}?Expires={expires}&Signature={signature}"

    def check(self, request: web.Request, now: float) -> tuple[FifeEntry | None, str]:
        """``(entry, "")`` for a good URL, else ``(None, why)``: tampered, expired, unknown."""
        image_id = request.match_info["image_id"]
        expires = request.query.get("Expires", "")
        signature = request.query.get("Signature", "")
        if not hmac.compare_digest(signature.encode(), self._sign(image_id, expires).encode()):
            return None, "tampered"
        entry = self._entries.get(image_id)
        if entry is None:
            return None, "unknown"
        if now > float(expires):
            return None, "expired"
        return entry, ""

    def _sign(self, image_id: str, expires: str) -> str:
        return hmac.new(self._key, f"{image_id}:{expires}".encode(), hashlib.sha256).hexdigest()
