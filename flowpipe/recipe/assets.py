"""Check and hash the recipe's asset files before anything is uploaded.

An asset must be a relative path that stays inside the recipe's folder once symlinks
are resolved (a recipe from someone else's repository must not read ``~/.ssh``), name
a PNG or JPEG file by its magic bytes (what the upload endpoint accepts), and be at
most 20 MB. Its SHA-256 stands for it in cache keys: of the image as the API made it
when the file is a flowpipe output (``flowpipe.imagebytes.api_sha256``: without the
provenance packet, which names the flowpipe version), so its key outlives an upgrade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from flowpipe.errors import AssetError
from flowpipe.imagebytes import api_sha256, mime_type
from flowpipe.recipe.load import Document
from flowpipe.recipe.messages import ErrorList, did_you_mean, quote

__all__ = ["MAX_ASSET_BYTES", "Asset", "load_assets", "sniff_mime"]

MAX_ASSET_BYTES = 20 * 1024 * 1024
_TYPES = ("image/png", "image/jpeg")  # what both dialects' upload endpoints take


@dataclass(frozen=True, slots=True)
class Asset:
    """A checked asset file: absolute path inside the recipe folder, hash, type, size."""

    name: str
    path: Path
    sha256: str
    mime: str
    size: int


def sniff_mime(head: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` from a file's first bytes, else None."""
    mime = mime_type(head)
    return mime if mime in _TYPES else None


def load_assets(doc: Document, folder: Path, errors: ErrorList) -> dict[str, Asset]:
    """Check every declared asset; problems go to ``errors``."""
    declared: Mapping[str, str] = doc.data.get("assets") or {}
    root = folder.resolve()
    assets: dict[str, Asset] = {}
    for name, text in declared.items():
        loc = doc.at(("assets", name))
        what = f"assets.{name}: {quote(text)}"
        if PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or (
            PureWindowsPath(text).drive
        ):
            errors.add(AssetError(
                f"{what}: an asset path must be relative to the recipe's folder", loc,
                hint="copy the file next to the recipe and name it relatively",
            ))
            continue
        try:
            target = (root / text).resolve()
        except (OSError, ValueError, RuntimeError):
            errors.add(AssetError(f"{what}: not a usable file path", loc))
            continue
        if not target.is_relative_to(root):
            errors.add(AssetError(
                f"{what}: the path leaves the recipe's folder ({root})", loc,
                hint="keep assets inside the recipe's folder; symlinks are followed",
            ))
            continue
        try:
            size = target.stat().st_size
            if not target.is_file():
                raise IsADirectoryError
            if size > MAX_ASSET_BYTES:
                errors.add(AssetError(
                    f"{what}: the file is {size / 2**20:.1f} MB; the API takes at most 20 MB",
                    loc, hint="shrink or re-encode it",
                ))
                continue
            data = target.read_bytes()
        except FileNotFoundError:
            errors.add(AssetError(f"{what}: file not found{_nearby(target)}", loc,
                                  hint="paths are relative to the recipe's folder"))
            continue
        except OSError as exc:
            errors.add(AssetError(f"{what}: cannot read it ({exc.strerror or 'not a file'})", loc))
            continue
        mime = sniff_mime(data[:12])
        if mime is None:
            errors.add(AssetError(
                f"{what}: not a PNG or JPEG image" + (" (the file is empty)" if not data else ""),
                loc, hint="the API takes PNG and JPEG only; convert it",
            ))
            continue
        assets[name] = Asset(
            name=name, path=target, sha256=api_sha256(data), mime=mime, size=size
        )
    return assets


def _nearby(target: Path) -> str:
    try:
        names = [p.name for p in target.parent.iterdir()]
    except OSError:
        return ""
    return did_you_mean(target.name, names)
