"""What runs in each corpus child: limits first, then the ``flowpipe`` command line.

The module is preloaded in a multiprocessing fork server, so every case starts from a
process that has already imported flowpipe (a case costs tens of milliseconds, not the
quarter second of a fresh interpreter), and is then a process of its own: its own
memory and CPU-time limits, folder, environment, stdout and stderr.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Mapping

import flowpipe.cli
import flowpipe.engine
import flowpipe.planner
import flowpipe.report
import flowpipe.store.repair
import flowpipe.summary
from flowpipe.recipe.schema import schema_validator

schema_validator()  # built once here rather than in every child
_PRELOADED = (flowpipe.engine, flowpipe.planner, flowpipe.report, flowpipe.summary,
              flowpipe.store.repair)


def run_case(argv: list[str], cwd: str, env: Mapping[str, str], stdout: str, stderr: str,
             memory: int, cpu_seconds: int, prelude: str | None) -> None:
    """Become one ``flowpipe ARGV`` under ``memory`` bytes and ``cpu_seconds`` of CPU."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    if prelude:
        exec(compile(prelude, "<prelude>", "exec"), {})  # the test's own fault injection
    sys.argv = ["flowpipe", *argv]
    flowpipe.cli.main()
