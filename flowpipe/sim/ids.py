"""mediaGenerationIds in the page's form, and who owns each one.

``user:{userid}-email:{hex of email}-image:{id}``. The user id is derived from the
email, so it is stable across simulator restarts; the image part is new for every
generation, and for an upload is derived from the account and the bytes (the same
file uploaded to the same account gets the same id, as a content-addressed store
would give it). The registry is what ``POST /_sim/reset`` forgets.

With a ``folder`` the registry outlives the simulator: each id is also written there
(one small JSON file per id, written whole), and an id it does not hold in memory is
looked up there. The embedded simulator keeps its folder in flowpipe's cache folder,
so the ids a run cached (uploads, generations) are still good on the next run: a
re-run has no 403 and re-uploads nothing. With a folder, memory holds only the most
recently used records (``MEMORY``), so a long embedded run does not grow with its
images; without one, memory is the only place and keeps every record.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["MEMORY", "MediaRecord", "MediaRegistry", "ParsedId", "format_id", "parse_id",
           "user_id"]

MEMORY = 1024  # records held in memory when a folder keeps them all

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
    """mediaGenerationId -> MediaRecord: fresh tokens per generation, content-derived
    tokens per upload; kept in ``folder`` too when one is given."""

    def __init__(self, seed: int, folder: Path | None = None, *, memory: int = MEMORY) -> None:
        self._seed = seed
        self._counter = 0
        self._records: OrderedDict[str, MediaRecord] = OrderedDict()
        self._folder = folder
        self._memory = memory

    def register(self, record: MediaRecord) -> str:
        """Give a generated image a new id owned by ``record.owner`` and remember it."""
        self._counter += 1
        return self._keep(_token(f"{self._seed}:{self._counter}:{record.sha256}"), record)

    def register_upload(self, record: MediaRecord) -> str:
        """The id of uploaded bytes on ``record.owner``: the same for the same bytes."""
        return self._keep(_token(f"upload:{record.owner.lower()}:{record.sha256}"), record)

    def _keep(self, token: str, record: MediaRecord) -> str:
        media_id = format_id(record.owner, token)
        if self._folder is not None:
            _write_whole(self._folder / _file_name(media_id),
                         json.dumps({"id": media_id, **_record_json(record)}).encode())
        self._hold(media_id, record)
        return media_id

    def _hold(self, media_id: str, record: MediaRecord) -> None:
        """Keep ``record`` in memory; with a folder, only the most recently used ones."""
        self._records[media_id] = record
        self._records.move_to_end(media_id)
        if self._folder is not None:
            while len(self._records) > self._memory:
                self._records.popitem(last=False)

    def get(self, media_id: str) -> MediaRecord | None:
        """The record for an id, or None if it was never made or was forgotten."""
        record = self._records.get(media_id)
        if record is None and self._folder is not None:
            record = _read_record(self._folder / _file_name(media_id), media_id)
        if record is not None:
            self._hold(media_id, record)
        return record

    def forget_all(self) -> int:
        """Forget every id (a simulated restart, the folder too); returns how many were
        known in memory."""
        count = len(self._records)
        self._records.clear()
        if self._folder is not None and self._folder.is_dir():
            for path in self._folder.glob("*.json"):
                with contextlib.suppress(OSError):
                    path.unlink()
        return count

    def __len__(self) -> int:
        return len(self._records)


def _token(text: str) -> str:
    raw = hashlib.blake2b(text.encode(), digest_size=24).digest()
    return "CAMa" + base64.b64encode(raw, altchars=b"Qz").decode()


def _file_name(media_id: str) -> str:
    return hashlib.blake2b(media_id.encode(), digest_size=16).hexdigest() + ".json"


def _record_json(record: MediaRecord) -> dict[str, Any]:
    data = asdict(record)
    data["thumb"] = base64.b64encode(record.thumb).decode()
    return data


def _read_record(path: Path, media_id: str) -> MediaRecord | None:
    """The record kept in ``path`` for ``media_id``; None if absent or unreadable."""
    try:
        data = json.loads(path.read_bytes())
        if data.get("id") != media_id:
            return None
        return MediaRecord(
            owner=str(data["owner"]), sha256=str(data["sha256"]),
            thumb=base64.b64decode(data["thumb"]), width=int(data["width"]),
            height=int(data["height"]),
            model=None if data.get("model") is None else str(data["model"]),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _write_whole(path: Path, data: bytes) -> None:
    """Write through a temp file and a rename, so a reader never sees half a record;
    a folder that cannot be written only costs the memory after a restart."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
