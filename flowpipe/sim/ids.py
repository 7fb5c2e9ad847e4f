"""mediaGenerationIds in the page's form, and who owns each one.

``user:{userid}-email:{hex of email}-image:{id}``. The user id is derived from the
email, so it is stable across simulator restarts; the image part is new for every
generation or upload. The registry is what ``POST /_sim/reset`` forgets.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

__all__ = ["MediaRecord", "MediaRegistry", "ParsedId", "format_id", "parse_id", "user_id"]

_ID = re.compile(r"^user:(\d+)-email:((?:[0-9a-f]{2})+)-image:([A-Za-z0-9]+)$")


def user_id(email: str) -> int:
    """A stable 3-to-4-digit user number for an account email."""
    digest = hashlib.sha256(email.lower().encode()).digest()
    return 100 + int.from_bytes(digest[:4], "big") % 9900


def format_id(email: str, image: str) -> str:
    """``user:N-email:HEX-image:IMAGE`` for an account and an image token."""
    return f"user:{user_id(email)}-email:{email.encode().hex()}-image:{image}"


@dataclass(frozen=True, slots=True)
class ParsedId:
    """The parts of a well-formed mediaGenerationId."""

    user: str  # "user:N"
    email: str
    image: str


def parse_id(text: str) -> ParsedId | None:
    """Split a mediaGenerationId; None when it is not in the page's form."""
    match = _ID.match(text)
    if match is None:
        return None
    try:
        email = bytes.fromhex(match.group(2)).decode()
    except UnicodeDecodeError:
        return None
    return ParsedId(user=f"user:{match.group(1)}", email=email, image=match.group(3))


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """What the simulator remembers about an image it made or received.

    ``sha256`` is of the image bytes, so renders that use it as a reference depend on
    the content, not on which account holds it; ``thumb`` is a small JPEG drawn into
    images that reference it.
    """

    owner: str
    sha256: str
    thumb: bytes
    width: int = 0  # pixels, when known (the shape `auto` and upscales follow)
    height: int = 0
    model: str | None = None  # the model that made it; None for an upload


class MediaRegistry:
    """mediaGenerationId -> MediaRecord, with fresh image tokens per registration."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._counter = 0
        self._records: dict[str, MediaRecord] = {}

    def register(self, record: MediaRecord) -> str:
        """Give the image a new id owned by ``record.owner`` and remember it."""
        self._counter += 1
        raw = hashlib.blake2b(
            f"{self._seed}:{self._counter}:{record.sha256}".encode(), digest_size=24
        ).digest()
        token = "CAMa" + base64.b64encode(raw, altchars=b"Qz").decode()
        media_id = format_id(record.owner, token)
        self._records[media_id] = record
        return media_id

    def get(self, media_id: str) -> MediaRecord | None:
        """The record for an id, or None if it was never made or was forgotten."""
        return self._records.get(media_id)

    def forget_all(self) -> int:
        """Forget every id (a simulated restart); returns how many were known."""
        count = len(self._records)
        self._records.clear()
        return count

    def __len__(self) -> int:
        return len(self._records)
