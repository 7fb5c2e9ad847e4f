"""Hostile recipes and secrets: no token on disk, no sandbox escape, no write outside OUT.

Covered elsewhere and not repeated here: the token scan after 401/402/596 stops
(tests/engine/test_runner_e2e.py), pickle refusal and path escapes of the writer itself
(tests/store/).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowpipe.cli import cli
from flowpipe.engine import run_recipe_async
from flowpipe.sim import CapacitySpec, SimThread, running_sim

from .conftest import TOKEN, assert_outputs_whole, run_options, sim_config
from .test_sim_restart import ResetAfter

FAULTY = """
version: 1
name: faulty
defaults: {model: imagen-4, count: 1}
steps:
  shot:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}
    prompt: "product shot number {{ n }}"
  detail:
    matrix: {n: [1, 2, 3, 4]}
    context: ["shot[n={{ n }}].0"]
    prompt: "detail of shot {{ n }}"
"""


def _every_file(*folders: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for folder in folders for p in folder.rglob("*") if p.is_file()}


async def test_token_is_nowhere_after_a_faulted_run(
    write_recipe: Callable[..., Path], tmp_path: Path,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = write_recipe(FAULTY)
    caplog.set_level(logging.DEBUG)
    config = sim_config(capacity=CapacitySpec(kind="constant", level=3), moderation_rate=0.1,
                        fault_rate=0.1, reject_status="mixed")
    async with running_sim(config) as sim:
        sink = ResetAfter(sim, "shot[n=1]")  # a 403 and a re-upload as well
        result = await run_recipe_async(
            recipe, run_options(sim.base_url, tmp_path, report=True, fixed_concurrency=8),
            sinks=[sink],
        )
        stats = sim.stats()
    assert result.exit_code in (0, 1), result.message
    assert sum(stats["faults"].values()) > 0 and stats["statuses"].get("403", 0) > 0
    assert (tmp_path / "out" / "report.html").exists()
    files = _every_file(tmp_path / "out", tmp_path / "cache", recipe.parent)
    assert len(files) > 20
    captured = capsys.readouterr()
    needle = TOKEN.encode()
    assert [p for p, data in files.items() if needle in data] == []
    for text in (caplog.text, captured.out, captured.err):
        assert TOKEN not in text
    assert TOKEN[:12] not in caplog.text


SANDBOX_PROBES = {
    "class": "{{ ''.__class__ }}",
    "mro-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "attr-filter": "{{ ''|attr('__class__') }}",
    "for-subclasses": "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "cycler-globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].environ }}",
    "self-context": "{{ self._TemplateReference__context }}",
    "namespace-init": "{{ namespace.__init__.__globals__ }}",
    "range-self": "{{ range.__self__ }}",
    "config": "{{ config.items() }}",
    "include-file": "{% include '/etc/passwd' %}",
    "import": "{% import 'os' as os %}{{ os }}",
    "extends": "{% extends '/etc/hostname' %}",
    "environ-var": "{{ environ }}",
    "format-attr": "{{ '{0.__class__}'.format('') }}",
    "mod-format": "{{ '%s' % ''.__class__ }}",
}


@pytest.mark.parametrize("probe", SANDBOX_PROBES.values(), ids=SANDBOX_PROBES.keys())
def test_validate_rejects_sandbox_probes_with_exit_2(
    write_recipe: Callable[..., Path], probe: str
) -> None:
    escaped = probe.replace("\\", "\\\\").replace('"', '\\"')
    recipe = write_recipe(
        f'version: 1\nname: probe\nsteps:\n  a:\n    prompt: "{escaped}"\n    seed: 1\n'
    )
    result = CliRunner().invoke(cli, ["validate", str(recipe)])
    assert result.exit_code == 2, result.output
    assert "recipe.yaml:5:" in result.output  # named at the prompt, not some other error
    assert "Traceback" not in result.output
    assert "root:" not in result.output and "uid=" not in result.output


def test_validate_accepts_the_harmless_control(write_recipe: Callable[..., Path]) -> None:
    recipe = write_recipe('version: 1\nname: probe\nsteps:\n  a:\n    prompt: "{{ 1 + 1 }}"\n')
    result = CliRunner().invoke(cli, ["validate", str(recipe)])
    assert result.exit_code == 0, result.output


HOSTILE_VALUES = [
    "../../escape", "/etc/cron.d/x", "..", ".", "a/../../b", "C:\\Windows\\x",
    "\\\\server\\share", "a\uff0fb", "\uff0e\uff0e\uff0fup", "\u202egpj.exe", "~", "a\u2215b",
    "con", "x" * 300, "tab\there",
]


async def test_hostile_matrix_values_stay_under_out(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    values = ", ".join('"' + v.replace("\\", "\\\\").replace("\t", "\\t") + '"'
                       for v in HOSTILE_VALUES)
    recipe = write_recipe(
        "version: 1\nname: paths\ndefaults: {model: imagen-4, count: 1}\nsteps:\n"
        f"  s:\n    matrix: {{v: [{values}]}}\n    prompt: \"value {{{{ v }}}}\"\n"
    )
    before = set(tmp_path.rglob("*"))
    async with running_sim(sim_config()) as sim:
        result = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path))
    assert result.exit_code == 0, result.message
    out = (tmp_path / "out").resolve()
    created = set(tmp_path.rglob("*")) - before
    allowed = (out, (tmp_path / "cache").resolve())
    lock = (recipe.parent / "recipe.lock.json").resolve()
    strays = [p for p in created
              if p.resolve() != lock and not any(p.resolve().is_relative_to(a) for a in allowed)]
    assert strays == []
    assert assert_outputs_whole(out) == len(HOSTILE_VALUES)
    for path in out.rglob("*"):
        rel = path.relative_to(out)
        assert ".." not in rel.parts
        assert not any(ch in str(rel) for ch in ("\u202e", "\\", "\uff0f", "\u2215", "\t"))


@pytest.mark.parametrize(
    ("assets", "step_id"),
    [
        pytest.param("{logo: ../outside.png}", "a", id="asset-dotdot"),
        pytest.param("{logo: /etc/passwd}", "a", id="asset-absolute"),
        pytest.param("{logo: 'sub/../../outside.png'}", "a", id="asset-nested-dotdot"),
        pytest.param("{logo: link.png}", "a", id="asset-symlink-out"),
        pytest.param("{}", "'../evil'", id="step-dotdot"),
        pytest.param("{}", "'/abs'", id="step-absolute"),
        pytest.param("{}", "'a\uff0fb'", id="step-fullwidth-solidus"),
        pytest.param("{}", "'\u202eevil'", id="step-rtl-override"),
    ],
)
def test_asset_paths_and_step_ids_that_leave_the_folder_are_rejected(
    write_recipe: Callable[..., Path], tmp_path: Path, assets: str, step_id: str
) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    recipe = write_recipe(
        f"version: 1\nname: esc\nassets: {assets}\nsteps:\n"
        f"  {step_id}:\n    prompt: \"hello\"\n"
        + ("    context: [assets.logo]\n" if assets != "{}" else "")
    )
    (recipe.parent / "link.png").symlink_to(outside)
    result = CliRunner().invoke(cli, ["validate", str(recipe)])
    assert result.exit_code == 2, result.output
    assert "recipe.yaml:" in result.output and "Traceback" not in result.output


async def test_report_escapes_every_recipe_string(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    payloads = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>',
                "</textarea><svg onload=alert(3)>", "javascript:alert(4)//'"]
    prompt = " ".join(payloads).replace("\\", "\\\\").replace('"', '\\"')
    recipe = write_recipe(
        "version: 1\nname: xss\ndefaults: {model: imagen-4, count: 1}\n"
        f"vars: {{tag: \"<b onmouseover=alert(5)>\"}}\nsteps:\n"
        f"  s:\n    prompt: \"{prompt} {{{{ tag }}}}\"\n"
    )
    async with running_sim(sim_config()) as sim:
        result = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path, report=True))
    assert result.exit_code == 0, result.message
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)" in html  # the prompt is shown ...
    for raw in ("<script>alert(1)", "<img src=x", "<svg onload", "<b onmouseover"):
        assert raw not in html  # ... but never as markup


async def test_cache_folder_is_private_after_a_run_even_if_it_was_open(
    write_recipe: Callable[..., Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    cache.chmod(0o755)
    old = os.umask(0o022)
    try:
        recipe = write_recipe(FAULTY)
        async with running_sim(sim_config()) as sim:
            result = await run_recipe_async(recipe, run_options(sim.base_url, tmp_path))
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.message
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700  # nothing inside is reachable by others
    assert any(p.is_file() for p in cache.rglob("*"))


@pytest.mark.parametrize(
    "name",
    ["../../escape", "/ABSOLUTE/target", "..", "CON", "n" * 200],
    ids=["dotdot", "absolute", "only-dots", "windows-device", "long"],
)
def test_the_recipe_name_never_chooses_a_folder_outside_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Without -o, the output goes to ./out/<slug of the name>, whatever the name says."""
    work = tmp_path / "deep" / "work"
    recipes = work / "recipes"
    recipes.mkdir(parents=True)
    target = name.replace("/ABSOLUTE", str(tmp_path))  # an absolute path we may inspect
    (recipes / "r.yaml").write_text(
        f"version: 1\nname: '{target}'\ndefaults: {{count: 1}}\nsteps:\n  a: {{prompt: hi}}\n"
    )
    monkeypatch.chdir(work)
    before = set(tmp_path.rglob("*"))
    result = CliRunner().invoke(cli, [
        "run", "recipes/r.yaml", "--plain", "--backend", "sim", "--time-scale", "0.001",
        "--cache-dir", str(tmp_path / "cache"),
    ], env={"USEAPI_TOKEN": ""})
    assert result.exit_code == 0, result.output
    made = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    out = work / "out"
    strays = [p for p in made if not p.is_relative_to(out) and not p.is_relative_to(
        tmp_path / "cache") and p != recipes / "r.lock.json"]
    assert strays == []
    (folder,) = [p for p in out.iterdir()]
    assert (folder / "manifest.json").exists() and (folder / "report.html").exists()
    assert folder.name not in ("..", ".", "CON") and len(folder.name) <= 60



@pytest.mark.parametrize(
    "url",
    ["http://alice:{token}@{host}/v1/google-flow", "http://{token}@{host}/v1/google-flow",
     "http://{host}/{token}/v1/google-flow"],
    ids=["user-password", "user", "path"],
)
def test_credentials_in_the_api_url_are_refused_and_never_written(
    write_recipe: Callable[..., Path], tmp_path: Path, url: str
) -> None:
    recipe = write_recipe(FAULTY)
    with SimThread(sim_config()) as sim:
        host = sim.base_url.split("/")[2]
        result = CliRunner().invoke(cli, [
            "run", str(recipe), "-o", str(tmp_path / "out"), "--plain",
            "--cache-dir", str(tmp_path / "cache"),
        ], env={"USEAPI_TOKEN": TOKEN, "FLOWPIPE_API_URL": url.format(token=TOKEN, host=host)})
        sent = sim.stats()["generations"]
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("flowpipe: FLOWPIPE_API_URL")
    assert TOKEN not in result.output and "alice" not in result.output
    assert sent == 0 and not (tmp_path / "out").exists()
