"""Which API a run talks to: the real one, a simulator at a URL, or one embedded here.

With no token the run starts the simulator in-process on loopback (DESIGN section 5),
speaking the recipe's dialect; ``flowpipe.sim`` is imported only then, so a run
against the real API never loads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from flowpipe.api import check_base_url
from flowpipe.dialects import DEFAULT_DIALECT
from flowpipe.errors import FrozenCacheMissError, UsageError
from flowpipe.store.lock import lock_path, read_lock

if TYPE_CHECKING:
    from flowpipe.sim import SimConfig

__all__ = [
    "EMBEDDED_TIME_SCALE",
    "REAL_API_URL",
    "Backend",
    "BackendChoice",
    "choose_backend",
    "frozen_backend",
    "is_loopback",
    "keys_backend",
    "open_backend",
]

REAL_API_URL = "https://api.useapi.net/v1/google-flow"
EMBEDDED_TIME_SCALE = 0.01
Kind = Literal["auto", "sim", "useapi"]


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """The backend kind for keys, and where to send (``base_url`` None: embedded)."""

    kind: str
    base_url: str | None
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Backend:
    """A backend that is up: where to send and with which token."""

    kind: str
    base_url: str
    token: str = field(repr=False)
    embedded: bool


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def choose_backend(kind: Kind, base_url: str | None, token: str | None) -> BackendChoice:
    """Pick the backend from the options, then ``FLOWPIPE_API_URL`` and ``USEAPI_TOKEN``."""
    token = token if token is not None else os.environ.get("USEAPI_TOKEN")
    base_url = base_url or os.environ.get("FLOWPIPE_API_URL")
    if (kind == "sim" and not base_url) or (kind == "auto" and not token):
        return BackendChoice("sim", None)
    if not token:
        raise UsageError(
            "no API token: set USEAPI_TOKEN",
            hint="or run on the embedded simulator (backend 'sim' or 'auto')",
            option="backend",
        )
    base_url = check_base_url(base_url or REAL_API_URL, token=token)
    if kind == "auto":
        kind = "sim" if is_loopback(base_url) else "useapi"
    return BackendChoice(kind, base_url, token)


def frozen_backend(kind: Kind, recipe: Path, base_url: str | None, token: str | None) -> str:
    """The backend kind a frozen run checks keys for: the one asked for, else the lock's."""
    return keys_backend(kind, recipe, base_url, token, lock_first=True)


def keys_backend(
    kind: Kind, recipe: Path, base_url: str | None, token: str | None, *, lock_first: bool
) -> str:
    """The backend kind keys are computed for when nothing is sent (a frozen run, plan,
    why): the one asked for; under ``auto`` the committed lock's, so a lock made on the
    real API reads as cached where there is no token. ``lock_first`` False (plan, why):
    a token decides before the lock, as it decides where ``run`` sends."""
    if kind != "auto":
        return kind
    try:
        choice = choose_backend(kind, base_url, token)
    except UsageError:
        choice = BackendChoice("sim", None)
    if choice.base_url is not None and not lock_first:  # a token chose where run sends
        return choice.kind
    with contextlib.suppress(FrozenCacheMissError):
        locked = read_lock(lock_path(recipe)).backend
        if locked in ("sim", "useapi"):
            return locked
    return choice.kind


@contextlib.asynccontextmanager
async def open_backend(
    choice: BackendChoice, *, time_scale: float, sim: SimConfig | None = None,
    dialect: str = DEFAULT_DIALECT, media_folder: Path | None = None,
) -> AsyncIterator[Backend]:
    """The chosen backend, with the embedded simulator running while the block lasts.

    The embedded simulator speaks ``dialect`` (the recipe's), whatever ``sim`` says.
    ``media_folder`` keeps its mediaGenerationIds across runs (the runner gives one in
    its cache folder), so the ids a run cached stay good; a ``sim`` that names its own
    folder keeps that one.
    """
    if choice.base_url is not None:
        assert choice.token is not None
        yield Backend(choice.kind, choice.base_url, choice.token, False)
        return
    from flowpipe.sim import SimConfig, running_sim  # only an embedded run needs it

    sim_token = secrets.token_urlsafe(16)
    base = sim or SimConfig(time_scale=time_scale, seed=0)
    config = dataclasses.replace(base, tokens=(sim_token,), time_scale=time_scale,
                                 dialect=dialect,
                                 media_folder=base.media_folder or media_folder)
    async with running_sim(config) as running:
        yield Backend(choice.kind, running.base_url, sim_token, True)
