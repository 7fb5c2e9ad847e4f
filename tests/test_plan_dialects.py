"""Plan keys across dialects: 2025-11 keys as before, 2026-07 keys name the dialect, upscales."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from flowpipe.cli import cli
from flowpipe.dialects import request_references
from flowpipe.planner import (
    Plan,
    build_plan,
    canonical_json,
    node_request,
    request_key,
    request_refs,
)

NEW = """\
version: 1
name: keys
api: "2026-07"
assets: {logo: assets/logo.png}
steps:
  hero:
    prompt: a hero
    seed: 7
    count: 2
  mix:
    prompt: a mix
    model: nano-banana-pro
    aspectRatio: auto
    context: [hero.0, assets.logo, hero.1]
    captchaRetry: 5
  big:
    upscale: hero.1
    resolution: 4k
  after:
    prompt: from the big one
    context: [big.0]
"""


def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def make_plan(folder: Path, text: str = NEW, **kwargs: Any) -> Plan:
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    (folder / "assets" / "logo.png").write_bytes(png((0, 128, 128)))
    (folder / "recipe.yaml").write_text(text, encoding="utf-8")
    return build_plan(folder / "recipe.yaml", **kwargs)


def sha(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


OLD_REFS = """\
version: 1
name: refs
assets: {logo: assets/logo.png}
steps:
  hero: {prompt: a hero, count: 2}
  poster: {prompt: p, model: imagen-4, style: assets.logo, context: [hero.1, hero.0]}
"""


@pytest.mark.parametrize("text", [NEW, OLD_REFS], ids=["2026-07", "2025-11"])
def test_request_refs_name_the_fields_of_the_body_in_its_order(
    tmp_path: Path, text: str,
) -> None:
    """The plan's body, why's field names and the dialect's field order are one list."""
    plan = make_plan(tmp_path, text)
    for node in plan.nodes.values():
        request = plan.provisional_request(node.id)
        fields = [name for name, _ in request_refs(node)]
        assert [name for name in request if name in fields] == fields
        assert request_references(request) == tuple(fields)
        assert len(fields) == len(node.refs)


def test_2025_keys_are_the_old_formula(tmp_path: Path) -> None:
    """No `api:` is 2025-11, hashed as {backend, request} exactly as before dialects."""
    plan = make_plan(tmp_path, "version: 1\nname: k\nsteps:\n  a: {prompt: p, seed: 3}\n")
    request = {"prompt": "p", "model": "imagen-4", "aspectRatio": "landscape", "count": 4,
               "seed": 3}
    assert plan.nodes["a"].provisional_key == sha({"backend": "sim", "request": request})
    explicit = make_plan(tmp_path / "x", 'version: 1\nname: k\napi: "2025-11"\nsteps:\n'
                         "  a: {prompt: p, seed: 3}\n")
    assert explicit.nodes["a"].provisional_key == plan.nodes["a"].provisional_key


def test_2026_keys_name_the_dialect_and_the_endpoint(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    hero = plan.nodes["hero"]
    request = {"prompt": "a hero", "model": "nano-banana-2-lite", "aspectRatio": "16:9",
               "count": 2, "seed": 7}
    assert plan.provisional_request("hero") == request
    assert hero.provisional_key == sha(
        {"backend": "sim", "dialect": "2026-07", "endpoint": "images", "request": request}
    )
    assert hero.provisional_key != sha({"backend": "sim", "request": request})


def test_2026_references_are_reference_n_and_captcha_retry_is_not_keyed(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    hero_key = plan.nodes["hero"].provisional_key
    request = plan.provisional_request("mix")
    assert {k: v for k, v in request.items() if k.startswith("reference_")} == {
        "reference_1": f"node:{hero_key}#0",
        "reference_2": f"sha256:{hashlib.sha256(png((0, 128, 128))).hexdigest()}",
        "reference_3": f"node:{hero_key}#1",
    }
    assert "captchaRetry" not in request and plan.nodes["mix"].captcha_retry == 5
    other = make_plan(tmp_path / "b", NEW.replace("captchaRetry: 5", "captchaRetry: 9"))
    assert other.nodes["mix"].provisional_key == plan.nodes["mix"].provisional_key


@pytest.mark.parametrize(
    ("old", "new"),
    [("prompt: a hero\n", "prompt: a hero\n    model: imagen-4\n"),
     ("prompt: a hero\n", "prompt: a hero\n    aspectRatio: landscape\n")],
    ids=["imagen-4-is-nano-banana-2-lite", "landscape-is-16:9"],
)
def test_an_alias_plans_exactly_like_the_name_it_stands_for(
    tmp_path: Path, old: str, new: str
) -> None:
    base = make_plan(tmp_path / "a")
    aliased = make_plan(tmp_path / "b", NEW.replace(old, new, 1))
    assert {i: n.provisional_key for i, n in aliased.nodes.items()} == {
        i: n.provisional_key for i, n in base.nodes.items()
    }


def test_upscale_node_shape_and_key(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    big, hero = plan.nodes["big"], plan.nodes["hero"]
    assert (big.kind, big.resolution, big.count, big.seed, big.prompt) == (
        "upscale", "4k", 1, None, ""
    )
    assert (big.model, big.aspect_ratio, big.dialect) == (hero.model, hero.aspect_ratio, "2026-07")
    assert big.source is not None and big.source.role == "source"
    assert (big.source.node, big.source.index) == ("hero", 1)
    assert big.refs == (big.source,) and big.deps == ("hero",)
    request = {"mediaGenerationId": f"node:{hero.provisional_key}#1", "resolution": "4k"}
    assert plan.provisional_request("big") == request
    assert big.provisional_key == sha(
        {"backend": "sim", "dialect": "2026-07", "endpoint": "images/upscale", "request": request}
    )
    # the real key hashes the source image's bytes, as references do
    source_bytes = hashlib.sha256(b"the upscaled image's source").hexdigest()
    assert request_key(big, {big.source: source_bytes}, "sim") == sha(
        {"backend": "sim", "dialect": "2026-07", "endpoint": "images/upscale",
         "request": {"mediaGenerationId": f"sha256:{source_bytes}", "resolution": "4k"}}
    )
    assert node_request(big, {big.source: source_bytes})["mediaGenerationId"] == (
        f"sha256:{source_bytes}"
    )


def test_an_upscale_feeds_later_steps_and_its_changes_flow_down(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    after = plan.nodes["after"]
    assert after.deps == ("big",) and ("big", "after") in plan.edges
    assert plan.provisional_request("after")["reference_1"] == (
        f"node:{plan.nodes['big'].provisional_key}#0"
    )
    sharper = make_plan(tmp_path / "2k", NEW.replace("resolution: 4k", "resolution: 2k"))
    changed = {i for i in plan.nodes if plan.nodes[i].provisional_key
               != sharper.nodes[i].provisional_key}
    assert changed == {"big", "after"}
    other_source = make_plan(tmp_path / "src", NEW.replace("upscale: hero.1", "upscale: hero.0"))
    assert other_source.nodes["big"].provisional_key != plan.nodes["big"].provisional_key


def test_upscale_resolution_defaults_to_2k(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, NEW.replace("    resolution: 4k\n", ""))
    assert plan.nodes["big"].resolution == "2k"


def test_plan_json_shows_kind_resolution_and_api(tmp_path: Path) -> None:
    make_plan(tmp_path)
    result = CliRunner().invoke(cli, ["plan", str(tmp_path / "recipe.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["api"] == "2026-07"
    by_id = {n["id"]: n for n in doc["nodes"]}
    assert (by_id["big"]["kind"], by_id["big"]["resolution"]) == ("upscale", "4k")
    assert by_id["big"]["references"][0]["role"] == "source"
    assert (by_id["mix"]["kind"], by_id["mix"]["captchaRetry"]) == ("generate", 5)


def test_plan_lines_show_an_upscale(tmp_path: Path) -> None:
    make_plan(tmp_path)
    result = CliRunner().invoke(cli, ["plan", str(tmp_path / "recipe.yaml")])
    line = next(ln for ln in result.stdout.splitlines() if " big " in ln)
    assert "upscale 4k" in line and "uses source hero.1" in line
