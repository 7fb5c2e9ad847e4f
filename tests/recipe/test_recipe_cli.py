from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from flowpipe.cli import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "campaign.yaml"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.stdout, result.stderr


def test_validate_example() -> None:
    code, out, err = invoke("validate", str(EXAMPLE))
    assert (code, out, err) == (0, f"ok: {EXAMPLE} (4 nodes)\n", "")


def test_validate_reports_good_and_bad_files_together(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: b\nsteps:\n  a: {prompt: x, count: 7}\n  b: {promt: y}\n")
    code, out, err = invoke("validate", str(EXAMPLE), str(bad), str(tmp_path / "none.yaml"))
    assert code == 2
    assert out == f"ok: {EXAMPLE} (4 nodes)\n"
    assert err.splitlines() == [
        f"flowpipe: {bad}:4:25: step 'a': count: must be an integer from 1 to 4 (got 7)",
        f"flowpipe: {bad}:5:3: step 'b': missing key 'prompt' (every step needs a prompt)",
        f"flowpipe: {bad}:5:7: step 'b': unknown key 'promt' (did you mean 'prompt'?)",
        f"flowpipe: {tmp_path / 'none.yaml'}:1:1: cannot read the recipe: No such file or "
        "directory (check the path)",
    ]


def test_validate_with_vars_and_bad_var_form() -> None:
    assert invoke("validate", str(EXAMPLE), "--var", "product=boot")[0] == 0
    code, _, err = invoke("validate", str(EXAMPLE), "--var", "product")
    assert code == 2
    assert err == "flowpipe: --var 'product': expected NAME=VALUE (NAME is letters, digits and " \
        "'_'; for example --var product=boot)\n"


def test_plan_text_lists_nodes_in_order_with_edges() -> None:
    code, out, _ = invoke("plan", str(EXAMPLE), "--var", "product=boot")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"{EXAMPLE}: 'trail-shoe-launch': 4 nodes from 3 steps, 12 images")
    order = [line.split()[1:3] for line in lines if line[:5].strip().isdigit()]
    assert [node for _, node in order] == [
        "hero", "closeup[angle=front]", "closeup[angle=side]", "poster"
    ]
    assert {state for state, _ in order} <= {"cached", "new", "changed"}
    assert "       prompt: 'studio close-up of the boot, side view'" in lines
    poster = next(line for line in lines if " poster " in line)
    assert "imagen-4" in poster and "portrait" in poster and "x4" in poster
    assert "uses style hero.2, context closeup[angle=side].1" in poster
    assert lines[-5:] == [
        "edges (4):",
        "  hero -> closeup[angle=front]",
        "  hero -> closeup[angle=side]",
        "  hero -> poster",
        "  closeup[angle=side] -> poster",
    ]


def test_plan_json_has_requests_and_provisional_keys() -> None:
    code, out, _ = invoke("plan", str(EXAMPLE), "--json")
    assert code == 0
    data = json.loads(out)
    nodes = {n["id"]: n for n in data["nodes"]}
    hero, poster = nodes["hero"], nodes["poster"]
    assert hero["request"] == {
        "prompt": "trail running shoe on a ridge at golden hour, teal and amber palette",
        "model": "imagen-4", "aspectRatio": "landscape", "count": 4, "seed": 1234,
    }
    assert poster["request"]["styleReference_1"] == f"node:{hero['provisional_key']}#2"
    side = nodes["closeup[angle=side]"]
    assert poster["request"]["contextReference_1"] == f"node:{side['provisional_key']}#1"
    assert side["request"]["contextReference_2"] == "sha256:" + data["assets"]["logo"]["sha256"]
    assert data["assets"]["logo"]["path"] == "assets/logo.png"
    assert data["edges"][0] == ["hero", "closeup[angle=front]"]
    assert data["backend"] == "sim"


def test_backend_is_part_of_every_key() -> None:
    sim = json.loads(invoke("plan", str(EXAMPLE), "--json")[1])
    real = json.loads(invoke("plan", str(EXAMPLE), "--json", "--backend", "useapi")[1])
    assert real["backend"] == "useapi"
    for a, b in zip(sim["nodes"], real["nodes"], strict=True):
        assert a["provisional_key"] != b["provisional_key"]


def test_plan_error_exit_code_and_location(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE.parent, tmp_path / "ex")
    recipe = tmp_path / "ex" / "campaign.yaml"
    recipe.write_text(recipe.read_text().replace("style: hero.2", "style: hero.7"))
    code, out, err = invoke("plan", str(recipe))
    assert (code, out) == (2, "")
    assert err == (
        f"flowpipe: {recipe}:31:12: step 'poster': style 'hero.7': step 'hero' makes 4 images "
        "(0-3) (use an index from 0-3)\n"
    )


def test_commands_have_help_with_an_example() -> None:
    for command in ("validate", "plan", "schema"):
        code, out, _ = invoke(command, "--help")
        assert code == 0 and "Example:" in out and f"flowpipe {command}" in out


def test_plan_and_why_say_they_only_read_the_lock() -> None:
    for command in ("plan", "why"):
        code, out, _ = invoke(command, "--help")
        assert code == 0 and "The lock file to compare with (only read" in out
        assert "to write" not in out
    assert "The lock file to write" in invoke("run", "--help")[1]
