"""Every attack of the hostile corpus, each in a child process under memory and CPU limits.

A case passes when its command exits with the expected code, prints no traceback, and
(for an error) ends with one ``flowpipe: ...`` line that names ``recipe.yaml:LINE:COL``
and says what is wrong; ``check`` then looks at what is on disk. The limits
(``harness.MEMORY_LIMIT``, ``harness.CPU_LIMIT``) are what fails a case that allocates
or spins: the wall-clock guard only stops a hung case, it is not a bound.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from . import child, harness
from .corpus import CASES, Case, echo_app

ERROR_LINE = re.compile(r"flowpipe: (?P<file>\S+?):(?P<line>\d+):(?P<col>\d+): \S.*")


@pytest.fixture(scope="module")
def fork_server() -> Iterator[multiprocessing.context.ForkServerContext]:
    """A fork server that has imported flowpipe once; each case is a fork of it.

    Python 3.11's fork server imports its preload list before it applies the parent's
    sys.path, so the tests folder goes in through PYTHONPATH while it starts.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([child.__name__])
    tests = str(Path(__file__).parents[1])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests, os.environ.get(
            "PYTHONPATH")])))
        multiprocessing.forkserver.ensure_running()  # type: ignore[attr-defined]
    yield context


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with harness.serve(echo_app()) as url:
        yield url


def test_corpus_covers_every_attack() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 120
    for prefix in ("template-", "sandbox-", "yaml-", "step-id-", "asset-", "matrix-",
                   "report-xss", "name-", "cache-", "api-", "prompt-", "nodes-"):
        assert any(i.startswith(prefix) for i in ids), prefix


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(
    case: Case, tmp_path: Path, fork_server: multiprocessing.context.ForkServerContext,
    echo_url: str,
) -> None:
    def command(argv: list[str], folder: Path, env: Mapping[str, str],
                prelude: str | None) -> harness.Outcome:
        out, err = tmp_path / "std" / "stdout.txt", tmp_path / "std" / "stderr.txt"
        process = fork_server.Process(target=child.run_case, args=(
            argv, str(folder), dict(env), str(out), str(err), harness.MEMORY_LIMIT,
            harness.CPU_LIMIT, prelude,
        ))
        process.start()
        process.join(harness.HANG_GUARD)
        if process.is_alive():
            process.kill()
            process.join()
            pytest.fail(f"{case.id}: still running after {harness.HANG_GUARD:.0f} s")
        assert process.exitcode is not None
        return harness.Outcome(process.exitcode, out.read_text(), err.read_text())

    folder, outcome = harness.run(case, tmp_path, command, echo_url)
    assert outcome.code == case.exit, (outcome.code, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr and "Traceback" not in outcome.stdout
    lines = outcome.stderr.splitlines()
    if case.error is not None:
        # a run's last line names its report (issue 13); the error is the line before
        last = next(line for line in reversed(lines) if not line.startswith("flowpipe: report: "))
        assert case.error in last, last
        if case.argv[0] == "validate":
            assert len(lines) == 1, lines  # one line, nothing else
        if case.where is not None:
            located = ERROR_LINE.fullmatch(last)
            assert located, last
            assert located["file"].endswith("recipe.yaml"), last
            assert f"{located['line']}:{located['col']}" == case.where, last
    if case.check is not None:
        case.check(folder, outcome.stdout, outcome.stderr)
