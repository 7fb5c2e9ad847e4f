"""Folder names made from recipe text, portable to Linux, macOS and Windows.

A recipe's name, its step ids and its matrix values become folders. Whatever they say,
the folder must stay where it is put (no separator, no ``..``, no absolute path) and
must be creatable everywhere: Windows refuses device names such as ``CON`` or
``nul.txt`` and names that end in a dot or a space, and most file systems refuse a
name longer than 255 bytes.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "MAX_FOLDER",
    "MAX_SLUG",
    "WINDOWS_DEVICES",
    "folder_name",
    "is_windows_device",
    "short_folder",
    "slug",
]

#: Names Windows reserves for devices, in any case and with any extension.
WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{port}{n}" for port in ("com", "lpt") for n in range(10)}
)
MAX_SLUG = 60  # characters of one slugged value
MAX_FOLDER = 120  # characters of one folder name made of several slugs

_BAD = re.compile(r"[^A-Za-z0-9._+-]+")


def is_windows_device(name: str) -> bool:
    """True for ``CON``, ``nul.txt``, ``COM1 `` and the like, which Windows cannot create.

    Windows compares the part before the first dot, less trailing spaces, case-blind.
    """
    return name.split(".", 1)[0].rstrip(" ").casefold() in WINDOWS_DEVICES


def slug(text: str, *, limit: int = MAX_SLUG, empty: str = "_") -> str:
    """``text`` in portable characters: ASCII letters, digits, ``.``, ``_``, ``+``, ``-``.

    Other characters become ``-``; leading and trailing ``.``/``-`` are dropped; at most
    ``limit`` characters; ``empty`` if nothing is left. A matrix folder (``k=SLUG``)
    cannot be a device name, so this leaves device names alone: see ``folder_name``.
    """
    name = _BAD.sub("-", text).strip("-.")[:limit].strip("-.")
    return name or empty


def folder_name(text: str, *, empty: str) -> str:
    """``slug(text)`` as a whole folder name: a Windows device name gets ``_`` after its
    stem (``con`` -> ``con_``, ``NUL.txt`` -> ``NUL_.txt``)."""
    name = slug(text, empty=empty)
    if is_windows_device(name):
        stem, dot, rest = name.partition(".")
        name = f"{stem}_{dot}{rest}"
    return name


def short_folder(name: str, unique: str) -> str:
    """``name`` if it has at most MAX_FOLDER characters, else its start and a hash.

    The hash is the first 8 hex digits of the SHA-256 of ``unique`` (a node id), so two
    long names that share their start still get different folders.
    """
    if len(name) <= MAX_FOLDER:
        return name
    tag = hashlib.sha256(unique.encode("utf-8")).hexdigest()[:8]
    return f"{name[: MAX_FOLDER - 9].rstrip('-.,=')}-{tag}"
