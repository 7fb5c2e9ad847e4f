"""Folder names made from recipe text are portable: no separators, no dots, no devices."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowpipe.names import MAX_FOLDER, folder_name, is_windows_device, short_folder, slug
from flowpipe.store.outputs import default_out_dir


@pytest.mark.parametrize(
    "name",
    ["CON", "con", "Nul", "aux", "PRN", "COM1", "com9", "LPT1", "lpt9", "COM0", "LPT0",
     "nul.txt", "CON.tar.gz", "aux .x", "COM1 "],
)
def test_windows_device_names_are_recognised(name: str) -> None:
    assert is_windows_device(name)


@pytest.mark.parametrize("name", ["CONSOLE", "con_", "nul-1", "COM10", "LPT", "xcon", "com"])
def test_other_names_are_not_devices(name: str) -> None:
    assert not is_windows_device(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trail-shoe-launch", "trail-shoe-launch"),
        ("/tmp/x", "tmp-x"),
        ("../../../x", "x"),
        ("C:\\Windows\\x", "C-Windows-x"),
        ("...", "_"),
        ("日本語", "_"),
        ("con", "con"),
        ("x" * 300, "x" * 60),
        ("My Campaign 2026", "My-Campaign-2026"),
    ],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("con", "con_"), ("NUL.txt", "NUL_.txt"), ("com1", "com1_"), ("console", "console"),
     ("", "empty")],
)
def test_folder_names_are_never_windows_devices(text: str, expected: str) -> None:
    assert folder_name(text, empty="empty") == expected


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("launch", "launch"),
        ("/tmp/x", "tmp-x"),
        ("../../x", "x"),
        ("..", "recipe"),
        ("///", "recipe"),
        ("日本語", "recipe"),
        ("CON", "CON_"),
        ("lpt1.final", "lpt1_.final"),
        ("z" * 200, "z" * 60),
    ],
)
def test_default_output_is_a_slug_under_out(name: str, folder: str) -> None:
    out = default_out_dir(name)
    assert out == Path("out") / folder
    assert not out.is_absolute() and ".." not in out.parts and len(out.parts) == 2


def test_long_folder_names_are_cut_with_a_hash_of_the_whole() -> None:
    long = ",".join(f"k{i}={'v' * 60}" for i in range(5))
    a, b = short_folder(long, "s[a]"), short_folder(long, "s[b]")
    assert len(a) <= MAX_FOLDER and len(b) <= MAX_FOLDER and a != b
    assert a.startswith("k0=vvv") and not a.endswith((".", "-", " "))
    assert short_folder("k=v", "s[k=v]") == "k=v"
