"""The plan: DAG order, cache keys that change exactly when an image would."""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import importlib.util
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from flowpipe.cli import cli
from flowpipe.errors import PlanError
from flowpipe.planner import Plan, Ref, build_plan, canonical_json, node_request, request_key

BASE = """\
version: 1
name: keys
vars: {product: shoe, mood: calm}
assets: {logo: assets/logo.png}
steps:
  hero:
    prompt: "{{ product }} hero"
    seed: 1234
  closeup:
    matrix: {angle: [front, side]}
    prompt: "{{ product }} {{ angle }}"
    model: nano-banana
    context: ["hero.0", assets.logo]
    count: 2
  poster:
    style: hero.2
    context: ["closeup[angle=side].1"]
    prompt: "{{ mood }} poster"
    model: imagen-4
  other:
    prompt: unrelated
    seed: 5
"""
ALL = {"hero", "closeup[angle=front]", "closeup[angle=side]", "poster", "other"}
HERO_DOWN = {"hero", "closeup[angle=front]", "closeup[angle=side]", "poster"}
CLOSEUP_DOWN = {"closeup[angle=front]", "closeup[angle=side]", "poster"}


def png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def make_plan(
    folder: Path, text: str = BASE, *, logo: bytes | None = None, **kwargs: Any
) -> Plan:
    (folder / "assets").mkdir(parents=True, exist_ok=True)
    (folder / "assets" / "logo.png").write_bytes(logo or png((0, 128, 128)))
    (folder / "recipe.yaml").write_text(text, encoding="utf-8")
    return build_plan(folder / "recipe.yaml", **kwargs)


def keys(plan: Plan) -> dict[str, str]:
    return {node_id: node.provisional_key for node_id, node in plan.nodes.items()}


@pytest.fixture
def base_keys(tmp_path: Path) -> dict[str, str]:
    return keys(make_plan(tmp_path / "base"))


SHAPING: list[tuple[str, str, str, dict[str, Any], set[str]]] = [
    ("hero-prompt", '"{{ product }} hero"', '"{{ product }} hero shot"', {}, HERO_DOWN),
    ("hero-seed", "seed: 1234", "seed: 1235", {}, HERO_DOWN),
    ("hero-count", "seed: 1234", "seed: 1234\n    count: 3", {}, HERO_DOWN),
    ("hero-aspect", "seed: 1234", "seed: 1234\n    aspectRatio: square", {}, HERO_DOWN),
    ("hero-model", "seed: 1234", "seed: 1234\n    model: nano-banana", {}, HERO_DOWN),
    ("hero-seed-random", "seed: 1234", "seed: random", {}, HERO_DOWN),
    ("var-used-upstream", "product: shoe", "product: boot", {}, HERO_DOWN),
    ("var-override", "", "", {"overrides": {"product": "boot"}}, HERO_DOWN),
    ("var-used-downstream", "mood: calm", "mood: loud", {}, {"poster"}),
    ("closeup-prompt", '"{{ product }} {{ angle }}"', '"{{ product }}, {{ angle }}"', {},
     CLOSEUP_DOWN),
    ("closeup-reference", '["hero.0", assets.logo]', '["hero.1", assets.logo]', {},
     CLOSEUP_DOWN),
    ("reference-order", '["hero.0", assets.logo]', '[assets.logo, "hero.0"]', {},
     CLOSEUP_DOWN),
    ("asset-bytes", "", "", {"logo": png((255, 0, 0))}, CLOSEUP_DOWN),
    ("recipe-name-derived-seeds", "name: keys", "name: keys2", {}, CLOSEUP_DOWN),
    ("unrelated-prompt", "prompt: unrelated", "prompt: unrelated!", {}, {"other"}),
    ("backend", "", "", {"backend": "useapi"}, ALL),
]


@pytest.mark.parametrize(
    ("old", "new", "kwargs", "changed"),
    [case[1:] for case in SHAPING],
    ids=[case[0] for case in SHAPING],
)
def test_what_shapes_an_image_changes_its_key_and_all_downstream(
    tmp_path: Path, base_keys: dict[str, str], old: str, new: str,
    kwargs: dict[str, Any], changed: set[str],
) -> None:
    assert old in BASE
    after = keys(make_plan(tmp_path / "after", BASE.replace(old, new, 1), **kwargs))
    assert {n for n in base_keys if after[n] != base_keys[n]} == changed


REORDERED = """\
version: 1
name: keys
assets: {logo: assets/logo.png}
vars: {mood: calm, product: shoe}
steps:
  other:
    seed: 5
    prompt: unrelated
  poster:
    model: imagen-4
    prompt: "{{ mood }} poster"
    context: ["closeup[angle=side].1"]
    style: hero.2
  closeup:
    count: 2
    context: ["hero.0", assets.logo]
    model: nano-banana
    prompt: "{{ product }} {{ angle }}"
    matrix: {angle: [front, side]}
  hero:
    seed: 1234
    prompt: "{{ product }} hero"
"""
NEUTRAL: list[tuple[str, str, dict[str, Any]]] = [
    ("reorder-steps", REORDERED, {}),
    ("comments-and-whitespace", "# a comment\n" + BASE.replace(
        "matrix: {angle: [front, side]}", "matrix:   # the angles\n      angle:\n"
        "        - front\n        - side\n\n").replace("seed: 5", "seed:    5   # fixed"), {}),
    ("rename-unrelated-step", BASE.replace("  other:", "  misc:"), {}),
    ("accounts", BASE.replace("name: keys", "name: keys\naccounts: [a@example.com]"), {}),
    ("fallback-and-retries", BASE.replace(
        "seed: 1234", "seed: 1234\n    fallback_model: none\n    moderation_retries: 9"), {}),
    ("explicit-builtin-defaults", BASE.replace(
        "name: keys", "name: keys\ndefaults: {aspectRatio: landscape, count: 4}"), {}),
    ("description", BASE.replace("name: keys", "name: keys\ndescription: for the launch"), {}),
    ("unused-var", BASE.replace("mood: calm", "mood: calm, spare: 1"), {}),
    ("added-matrix-value", BASE.replace("[front, side]", "[front, side, top]"), {}),
]


@pytest.mark.parametrize(("text", "kwargs"), [c[1:] for c in NEUTRAL], ids=[c[0] for c in NEUTRAL])
def test_what_does_not_shape_an_image_keeps_every_key(
    tmp_path: Path, base_keys: dict[str, str], text: str, kwargs: dict[str, Any]
) -> None:
    after = keys(make_plan(tmp_path / "after", text, **kwargs))
    after.setdefault("other", after.pop("misc", ""))
    assert {n: after[n] for n in base_keys} == base_keys


def test_token_environment_and_folder_do_not_matter(
    tmp_path: Path, base_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USEAPI_TOKEN", "secret-token")
    monkeypatch.setenv("FLOWPIPE_TOKEN", "secret-token")
    monkeypatch.chdir(tmp_path)
    assert keys(make_plan(tmp_path / "elsewhere" / "deeper")) == base_keys


def test_keys_are_canonical_json_of_backend_and_request(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    hero = plan.nodes["hero"]
    body = {"backend": "sim", "request": plan.provisional_request("hero")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hero.provisional_key == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert canonical_json({"b": 1, "a": "Zoë"}) == '{"a":"Zoë","b":1}'.encode()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(JSON)
def test_canonical_json_is_json_dumps_with_sorted_keys_and_no_spaces(value: Any) -> None:
    """The encoder is built once and reused; its bytes must be json.dumps's exactly."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == text.encode("utf-8")


def test_planning_hands_its_objects_to_the_oldest_generation(tmp_path: Path) -> None:
    """They live as long as the plan: the collector need not scan them when it restarts."""
    gc.collect()
    plan = make_plan(tmp_path)
    assert gc.isenabled()
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(node) in oldest for node in plan.nodes.values())


def test_planning_leaves_objects_the_program_froze_frozen(tmp_path: Path) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        make_plan(tmp_path)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def ref_hashes(node_refs: tuple[Ref, ...], plan: Plan, image: bytes) -> dict[Ref, str]:
    out = {}
    for ref in node_refs:
        if ref.kind == "asset":
            assert ref.asset is not None
            out[ref] = plan.assets[ref.asset].sha256
        else:
            out[ref] = hashlib.sha256(image).hexdigest()
    return out


def test_real_keys_follow_the_bytes_of_upstream_images(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    hero, closeup = plan.nodes["hero"], plan.nodes["closeup[angle=side]"]
    assert request_key(hero, {}, "sim") == hero.provisional_key  # nothing upstream: final
    one = request_key(closeup, ref_hashes(closeup.refs, plan, b"image one"), "sim")
    again = request_key(closeup, ref_hashes(closeup.refs, plan, b"image one"), "sim")
    two = request_key(closeup, ref_hashes(closeup.refs, plan, b"image two"), "sim")
    assert one == again != two
    assert one != closeup.provisional_key
    assert request_key(closeup, ref_hashes(closeup.refs, plan, b"image one"), "useapi") != one


def test_node_request_is_the_api_body_with_hashes(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    node = plan.nodes["poster"]
    hashes = {node.refs[0]: "a" * 64, node.refs[1]: "sha256:" + "b" * 64}
    assert node_request(node, hashes) == {
        "prompt": "calm poster", "model": "imagen-4", "aspectRatio": "landscape", "count": 4,
        "seed": node.seed, "styleReference_1": "sha256:" + "a" * 64,
        "contextReference_1": "sha256:" + "b" * 64,
    }
    with pytest.raises(KeyError, match=r"no hash for reference 'hero\.2' of node 'poster'"):
        node_request(node, {})


def test_random_seed_is_left_out_of_the_request(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, BASE.replace("seed: 1234", "seed: random"))
    assert plan.nodes["hero"].seed is None
    assert "seed" not in plan.provisional_request("hero")


def test_order_edges_and_critical_path(tmp_path: Path) -> None:
    text = BASE.replace("  hero:", "  zzz:\n    prompt: first written\n  hero:")
    plan = make_plan(tmp_path, text)
    assert list(plan.nodes) == ["zzz", "hero", "closeup[angle=front]", "closeup[angle=side]",
                                "poster", "other"]
    assert plan.edges == (
        ("hero", "closeup[angle=front]"), ("hero", "closeup[angle=side]"),
        ("hero", "poster"), ("closeup[angle=side]", "poster"),
    )
    assert plan.critical_path() == {
        "zzz": 1.0, "hero": 3.0, "closeup[angle=front]": 1.0, "closeup[angle=side]": 2.0,
        "poster": 1.0, "other": 1.0,
    }


def test_steps_written_after_their_users_are_ordered_first(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, """\
version: 1
name: order
steps:
  c: {prompt: c, context: [b.0]}
  free: {prompt: f}
  b: {prompt: b, context: [a.0]}
  a: {prompt: a}
""")
    assert list(plan.nodes) == ["free", "a", "b", "c"]
    assert plan.nodes["c"].deps == ("b",)


def test_cross_variant_references_are_not_a_cycle(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, """\
version: 1
name: cross
steps:
  a:
    matrix: {k: ["1", "2"]}
    prompt: "{{ k }}"
    context: ["{{ 'b.0' if k == '1' else 'c.0' }}"]
  b: {prompt: b, context: ["a[k=2].0"]}
  c: {prompt: c}
""")
    assert list(plan.nodes) == ["c", "a[k=2]", "b", "a[k=1]"]


def test_cycle_names_every_node_on_it(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as info:
        make_plan(tmp_path, """\
version: 1
name: cycle
steps:
  a: {prompt: a, context: [c.0]}
  b: {prompt: b, context: [a.0]}
  c: {prompt: c, context: [b.1]}
""")
    assert "references form a cycle: a -> c -> b -> a" in str(info.value)
    assert info.value.location is not None and info.value.location.line == 4


@pytest.mark.parametrize(
    ("step", "model", "fallback"),
    [
        ("{prompt: x}", "imagen-4", "nano-banana"),
        ("{prompt: x, context: [assets.logo]}", "nano-banana", "imagen-4"),
        ("{prompt: x, context: [assets.logo, assets.logo, assets.logo, assets.logo]}",
         "nano-banana", None),
        ("{prompt: x, style: assets.logo}", "imagen-4", None),
        ("{prompt: x, model: imagen-4, fallback_model: imagen-4}", "imagen-4", None),
        ("{prompt: x, fallback_model: none}", "imagen-4", None),
    ],
    ids=["plain", "context-picks-nano", "four-context", "style", "same-model", "none"],
)
def test_model_auto_selection_and_fallback(
    tmp_path: Path, step: str, model: str, fallback: str | None
) -> None:
    text = f"version: 1\nname: m\nassets: {{logo: assets/logo.png}}\nsteps:\n  s: {step}\n"
    node = make_plan(tmp_path, text).nodes["s"]
    assert (node.model, node.fallback_model) == (model, fallback)


def test_plan_values_are_immutable(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    with pytest.raises(TypeError):
        plan.nodes["x"] = plan.nodes["hero"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.nodes["hero"].prompt = "changed"  # type: ignore[misc]
    assert plan.accounts == ()


def test_asset_only_references_have_final_keys_at_plan_time(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, BASE.replace('["hero.0", assets.logo]', "[assets.logo]"))
    node = plan.nodes["closeup[angle=front]"]
    hashes: Mapping[Ref, str] = {r: plan.assets["logo"].sha256 for r in node.refs}
    assert request_key(node, hashes, "sim") == node.provisional_key


def load_generator() -> Any:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "plan_overhead.py"
    spec = importlib.util.spec_from_file_location("plan_overhead", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_json_for_ten_thousand_nodes(tmp_path: Path) -> None:
    recipe = load_generator().write_matrix_recipe(tmp_path, 10_000)
    result = CliRunner().invoke(cli, ["plan", str(recipe), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["nodes"]) == 10_000
    assert len({n["provisional_key"] for n in data["nodes"]}) == 10_000
    assert len(data["edges"]) == 10_000 - 100  # every step after the first uses the one before
    last = data["nodes"][-1]
    assert last["id"] == "s99[a=9,b=9]"
    assert last["request"]["contextReference_1"].startswith("node:")
