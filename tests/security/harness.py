"""Running a corpus case: its folder, its setup, its command, its outcome.

Shared by tests/security/test_corpus.py (cases in fork-server children under limits)
and benchmarks/security_corpus.py (cases in fresh interpreters, measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .corpus import Case

MEMORY_LIMIT = 768 * 1024 * 1024  # bytes of address space per case (RLIMIT_AS)
CPU_LIMIT = 10  # seconds of CPU per case (RLIMIT_CPU); the worst case needs about 1
HANG_GUARD = 120.0  # seconds of wall time before a case counts as hung (not a bound)

#: Runs ``flowpipe ARGV`` in a folder with an environment and an optional prelude, and
#: returns (exit code, stdout, stderr).
Command = Callable[[list[str], Path, Mapping[str, str], str | None], "Outcome"]


@dataclass(frozen=True)
class Outcome:
    """How one command ended."""

    code: int
    stdout: str
    stderr: str


def prepare(case: Case, root: Path) -> Path:
    """Make ``root/case`` with the case's files; return it."""
    folder = root / "case"
    folder.mkdir(parents=True)
    (root / "std").mkdir()
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def environment(case: Case, folder: Path, echo_url: str) -> dict[str, str]:
    """A clean environment: no token (the embedded simulator), a cache of its own."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "LANG": "C.UTF-8",
        "FLOWPIPE_CACHE_DIR": str(folder / "cache"),
    }
    env.update({k: v.replace("{echo}", echo_url) for k, v in case.env.items()})
    return env


def run(case: Case, root: Path, command: Command, echo_url: str) -> tuple[Path, Outcome]:
    """Prepare, set up and run ``case``; return its folder and how its command ended."""
    folder = prepare(case, root)
    env = environment(case, folder, echo_url)
    if case.setup is not None:

        def step(argv: list[str]) -> str:
            done = command(argv, folder, env, None)
            assert done.code == 0, (argv, done.stderr)
            return done.stdout

        case.setup(folder, step)
    return folder, command(list(case.argv), folder, env, case.prelude)


@contextlib.contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """Serve ``app`` on loopback from a thread; yields ``http://127.0.0.1:PORT``."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()
