"""`flowpipe run --remote`, `cache push` and `cache pull [--lock]` through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from flowpipe.cli import cli
from flowpipe.store import DiskCache
from flowpipe.store.remote import img_path
from flowpipe.store.s3 import parse_remote

RECIPE = """version: 1
name: {name}
defaults: {{count: 2}}
steps:
  a:
    prompt: "a small boat, {name}"
  b:
    context: [a.1]
    prompt: "the boat at night"
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> Path:
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("boat", "kite"):
        (tmp_path / f"{name}.yaml").write_text(RECIPE.format(name=name))
    return tmp_path


def run(project: Path, name: str, *extra: str) -> Result:
    return invoke("run", str(project / f"{name}.yaml"), "-o", str(project / "out" / name),
                  "--plain", "--no-report", *extra)


def gen_keys(folder: Path) -> set[str]:
    store = DiskCache(folder)
    try:
        return {k[4:] for k in store.keys() if k.startswith("gen:")}  # noqa: SIM118
    finally:
        store.close()


def locked_keys(lock: Path) -> set[str]:
    return {e["key"] for e in json.loads(lock.read_text())["nodes"].values()}


def test_push_sends_what_the_remote_lacks_then_nothing(project: Path, remote_url: str) -> None:
    assert run(project, "boat").exit_code == 0  # no remote: the local cache only
    pushed = invoke("cache", "push", "--remote", remote_url)
    assert pushed.exit_code == 0, pushed.output
    assert pushed.output.strip() == f"{remote_url}: 2 generation(s) pushed, 0 already there"
    again = invoke("cache", "push", "--remote", remote_url)
    assert again.output.strip() == f"{remote_url}: 0 generation(s) pushed, 2 already there"


def test_pull_with_a_lock_takes_exactly_what_it_names(
    project: Path, remote_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(project, "boat", "--remote", remote_url).exit_code == 0
    assert run(project, "kite", "--remote", remote_url).exit_code == 0  # also on the remote
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(project / "empty"))
    lock = project / "boat.lock.json"
    pulled = invoke("cache", "pull", "--remote", remote_url, "--lock", str(lock))
    assert pulled.exit_code == 0, pulled.output
    assert pulled.output.strip() == (f"{remote_url}: 2 generation(s) pulled, 0 already here, "
                                     "0 missing")
    assert gen_keys(project / "empty") == locked_keys(lock)
    everything = invoke("cache", "pull", "--remote", remote_url)
    assert "2 generation(s) pulled, 2 already here, 0 missing" in everything.output
    assert len(gen_keys(project / "empty")) == 4


def test_pull_fails_when_the_remote_lacks_something_the_lock_names(
    project: Path, remote_url: str
) -> None:
    assert run(project, "boat").exit_code == 0  # made locally, never pushed
    result = invoke("cache", "pull", "--remote", remote_url, "--lock",
                    str(project / "boat.lock.json"), "--cache-dir", str(project / "empty"))
    assert result.exit_code == 1
    assert "0 generation(s) pulled, 0 already here, 2 missing" in result.output
    assert sorted(line[9:] for line in result.output.splitlines()
                  if line.startswith("missing: ")) == sorted(locked_keys(
                      project / "boat.lock.json"))


def test_without_a_remote_push_and_pull_say_how_to_configure_one(project: Path) -> None:
    result = invoke("cache", "push")
    assert result.exit_code == 2
    assert "no remote cache configured" in result.output
    assert "FLOWPIPE_REMOTE" in result.output


def test_a_project_config_file_names_the_remote(project: Path, remote_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".flowpipe.yaml").write_text(f"remote: {remote_url}\n")
    monkeypatch.chdir(project)
    result = run(project, "boat")
    assert result.exit_code == 0, result.output
    assert invoke("cache", "push").output.strip() == (
        f"{remote_url}: 0 generation(s) pushed, 2 already there")
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(project / "empty"))
    frozen_without = run(project, "boat", "--frozen", "--no-remote")
    assert frozen_without.exit_code == 4  # --no-remote: the file's remote is not asked
    assert run(project, "boat", "--frozen").exit_code == 0


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowpipe", *args], check=False,
                          capture_output=True,
                          text=True, env=dict(os.environ), cwd=project, timeout=120)


def test_a_tampered_image_is_refused_in_one_line_and_frozen_fails(
    project: Path, remote_url: str, s3: Any, s3_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(project, "boat", "--remote", remote_url).exit_code == 0
    lock = json.loads((project / "boat.lock.json").read_text())
    sha = lock["nodes"]["a"]["images"][1]
    spec = parse_remote(remote_url)
    key = f"{spec.prefix}/{img_path(sha)}"
    s3.put_object(Bucket=spec.bucket, Key=key, Body=(project / "out" / "boat" / "a" / "default"
                                                      / "0.jpg").read_bytes())
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(project / "fresh"))
    done = _cli(project, "run", "boat.yaml", "-o", "again", "--plain", "--no-report",
                "--frozen", "--remote", remote_url)
    assert done.returncode == 4, done.stderr
    refusals = [line for line in done.stderr.splitlines() if "refused" in line]
    assert refusals == [f"flowpipe: remote object {remote_url}/v1/img/{sha} refused: its bytes "
                        f"hash to {refusals[0].split('hash to ')[1].split('…')[0]}…, not to the "
                        "SHA-256 in its name; it is not used"]
    assert "--frozen: node 'a' is not in the cache" in done.stderr
    assert not (project / "again" / "a" / "default" / "1.jpg").exists()
    assert s3_secret not in done.stderr + done.stdout


def test_refresh_with_a_remote_makes_the_keys_again(project: Path, remote_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(project, "boat", "--remote", remote_url).exit_code == 0
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(project / "other"))  # another machine
    again = run(project, "boat", "--remote", remote_url, "--refresh", "--json")
    assert again.exit_code == 0, again.output
    info = json.loads(again.output[again.output.index("{"):again.output.rindex("}") + 1])
    assert info["summary"]["api_calls"] == 2  # done claims did not hold the refresh back
    assert info["remote"]["pushed"] == 2


def test_the_ci_recipe_of_docs_ci_md_with_a_remote(tmp_path: Path, remote_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The refresh job fills the remote; the check job, on a fresh runner, runs --frozen
    against the committed lock from the remote alone and sends nothing."""
    import shutil

    example = Path(__file__).resolve().parents[2] / "examples" / "ci-smoke.yaml"
    repo = tmp_path / "repo"
    (repo / "examples").mkdir(parents=True)
    shutil.copy(example, repo / "examples")
    shutil.copy(example.with_suffix(".lock.json"), repo / "examples")
    (repo / ".flowpipe.yaml").write_text(f"remote: {remote_url}\n")
    recipe = repo / "examples" / "ci-smoke.yaml"
    committed = recipe.with_suffix(".lock.json").read_text()
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.chdir(repo)

    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "refresh-runner"))
    refresh = invoke("run", str(recipe), "-o", "out/ci-smoke", "--plain", "--no-report")
    assert refresh.exit_code == 0, refresh.output
    assert recipe.with_suffix(".lock.json").read_text() == committed  # the lock still holds

    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "check-runner"))
    check = invoke("run", str(recipe), "-o", "out/check", "--frozen", "--json", "--no-report")
    assert check.exit_code == 0, check.output
    info = json.loads(check.stdout)
    assert info["summary"]["api_calls"] == 0 and info["remote"]["pulled"] == 2
