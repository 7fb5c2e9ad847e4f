"""Time and peak memory of every hostile corpus case, as a user would meet it.

Usage: .venv/bin/python benchmarks/security_corpus.py [--only PREFIX] [--markdown]

Each case of tests/security/corpus.py runs in a fresh ``python -m flowpipe`` (what a
person or CI runs), not in the test suite's fork server, so the figures include the
interpreter's start and imports. The controls (``control-validate``: a one-line
recipe; ``control-run``: one node on the embedded simulator) are measured in the same
run, side by side: an attack is cheap when it costs what a control costs. Per case:
wall seconds, CPU seconds (user + system, from ``wait4``) and peak resident memory
(``VmHWM``, read by the child as it exits: ``ru_maxrss`` would start from the parent's
size at fork) of the command itself; setup commands (filling a cache to damage it) are
not counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from security import harness  # noqa: E402
from security.corpus import CASES, RUN, Case, echo_app  # noqa: E402

CHILD = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({harness.MEMORY_LIMIT}, {harness.MEMORY_LIMIT}))
resource.setrlimit(resource.RLIMIT_CPU, ({harness.CPU_LIMIT}, {harness.CPU_LIMIT + 1}))
hwm_path, prelude = sys.argv.pop(1), sys.argv.pop(1)
import atexit


@atexit.register
def _peak() -> None:  # this process's own peak; ru_maxrss would start at the parent's
    with open("/proc/self/status") as status, open(hwm_path, "w") as out:
        out.write(next(l for l in status if l.startswith("VmHWM")).split()[1])


if prelude:
    exec(compile(prelude, "<prelude>", "exec"), {{}})
sys.argv[0] = "flowpipe"
from flowpipe.cli import main
main()
"""
CONTROL_RUN = Case("control-run", RUN, 0, files={
    "recipe.yaml": "version: 1\nname: control\ndefaults: {count: 1}\nsteps: {a: {prompt: x}}\n"
})


class Measured:
    """Runs commands in fresh interpreters and keeps the figures of the last one."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.last: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __call__(self, argv: list[str], folder: Path, env: Mapping[str, str],
                 prelude: str | None) -> harness.Outcome:
        out, err = self.scratch / "stdout.txt", self.scratch / "stderr.txt"
        hwm = self.scratch / "peak-kb.txt"
        hwm.write_text("0")
        started = time.perf_counter()
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(hwm), prelude or "", *argv], cwd=folder,
                env=dict(env), stdout=stdout, stderr=stderr,
            )
            guard = threading.Timer(harness.HANG_GUARD, process.kill)
            guard.start()
            _, status, usage = os.wait4(process.pid, 0)  # its own usage, not the sum
            guard.cancel()
        wall = time.perf_counter() - started
        self.last = (wall, usage.ru_utime + usage.ru_stime, int(hwm.read_text()) / 1024)
        code = os.waitstatus_to_exitcode(status)
        process.returncode = code
        return harness.Outcome(code, out.read_text(), err.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose id starts with this")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    cases = [CONTROL_RUN, *CASES]
    cases = [c for c in cases if c.id.startswith(("control", args.only))]
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    rows = []
    with harness.serve(echo_app()) as echo, tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            root = Path(tmp) / case.id
            measure = Measured(Path(tmp))
            _, outcome = harness.run(case, root, measure, echo)
            wall, cpu, peak = measure.last
            ok = "ok" if outcome.code == case.exit and "Traceback" not in outcome.stderr else (
                f"UNEXPECTED exit {outcome.code}")
            rows.append((case.id, wall, cpu, peak, ok))
            if not args.markdown:
                print(f"{case.id:40s} {wall:6.2f} s {cpu:6.2f} cpu s {peak:7.1f} MB  {ok}")
    if args.markdown:
        print("| case | wall s | CPU s | peak MB |\n|---|---:|---:|---:|")
        for name, wall, cpu, peak, ok in rows:
            print(f"| {name} | {wall:.2f} | {cpu:.2f} | {peak:.0f} |" + ("" if ok == "ok" else
                                                                    f" {ok} |"))
    worst = max(rows[2:], key=lambda r: r[2]) if len(rows) > 2 else None
    if worst:
        print(f"\nworst CPU: {worst[0]} {worst[2]:.2f} s; highest peak: "
              f"{max(r[3] for r in rows):.0f} MB; cases: {len(rows)}")


if __name__ == "__main__":
    main()
