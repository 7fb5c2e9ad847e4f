"""Why a node runs (flowpipe.why): plan, run and `flowpipe why` agree, against the lock."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from flowpipe.cli import cli
from flowpipe.planner import build_plan, request_key
from flowpipe.store.cache import MemoryCache
from flowpipe.store.lock import LockEntry
from flowpipe.store.responses import CachedGeneration, CachedImage, ResponseCache, sha256_hex
from flowpipe.why import Baseline, Explainer, Verdict, chain, explain_plan, text_change

RECIPE = """
version: 1
name: teapot
x-shot: &shot {count: 1, seed: 42}
vars: {product: a ceramic teapot}
assets: {brand: assets/brand.png}
steps:
  hero:
    <<: *shot
    model: imagen-4
    prompt: "{{ product }} on a white sweep, soft light"
    style: assets.brand
  grid:
    <<: *shot
    matrix:
      aspectRatio: [landscape, portrait, square]
      model: [imagen-4, nano-banana]
    prompt: "{{ product }} on a kitchen table"
    context: [hero.0]
  swatch:
    <<: *shot
    prompt: a glaze swatch, celadon green
"""
GRID = [f"grid[aspectRatio={r},model={m}]" for r in ("landscape", "portrait", "square")
        for m in ("imagen-4", "nano-banana")]


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "brand.png").write_bytes(png((10, 120, 90)))
    (tmp_path / "teapot.yaml").write_text(textwrap.dedent(RECIPE).lstrip(), encoding="utf-8")
    return tmp_path


def flowpipe(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def run(folder: Path, *extra: str) -> Result:
    result = flowpipe("run", str(folder / "teapot.yaml"), "-o", str(folder / "out"), "--plain",
                      "--no-report", *extra)
    assert result.exit_code == 0, result.output
    return result


def edit(folder: Path, old: str, new: str) -> None:
    path = folder / "teapot.yaml"
    path.write_text(path.read_text().replace(old, new))


def plan_states(folder: Path, *extra: str) -> dict[str, tuple[str, list[str]]]:
    result = flowpipe("plan", str(folder / "teapot.yaml"), "--json", "-o", str(folder / "out"),
                      *extra)
    assert result.exit_code == 0, result.output
    return {n["id"]: (n["state"], n["why"]) for n in json.loads(result.stdout)["nodes"]}


def test_before_any_run_every_node_is_new(folder: Path) -> None:
    states = plan_states(folder)
    assert states["hero"] == ("new", ["not in the cache"])
    assert states[GRID[0]] == ("new", ["not in the cache"])


def test_a_prompt_edit_upstream_changes_it_and_its_descendants_only(folder: Path) -> None:
    run(folder)
    assert {s for s, _ in plan_states(folder).values()} == {"cached"}
    edit(folder, "soft light", "hard noon light")
    states = plan_states(folder)
    assert states["hero"] == ("changed", ['prompt: "…sweep, soft light" → "…sweep, hard noon '
                                          'light"'])
    for node in GRID:
        assert states[node] == ("changed", ["upstream image is made again: context hero.0 "
                                            "(hero changed)"])
    assert states["swatch"] == ("cached", [])

    why = flowpipe("why", str(folder / "teapot.yaml"), GRID[-1], "-o", str(folder / "out"))
    assert why.exit_code == 0, why.output
    assert why.stdout.splitlines() == [
        f"{GRID[-1]}: changed",
        "  upstream image is made again: context hero.0 (hero changed)",
        "  hero: changed",
        '    prompt: "…sweep, soft light" → "…sweep, hard noon light"',
    ]

    again = run(folder)
    lines = again.stderr.splitlines()
    hero = next(line for line in lines if "done hero " in line)
    assert hero.endswith('changed: prompt: "…sweep, soft light" → "…sweep, hard noon light"')
    for node in GRID:
        line = next(line for line in lines if f"done {node} " in line)
        assert ": changed: upstream image changed: context hero.0 (" in line
    assert "cached swatch" in again.stderr
    info = json.loads((folder / "out" / "run.json").read_text())["nodes"]
    assert info["hero"]["state"] == "changed" and info["hero"]["why"][0].startswith("prompt: ")
    assert info["swatch"]["state"] == "cached"


def test_an_asset_edit_names_the_file_and_its_hashes(folder: Path) -> None:
    run(folder)
    (folder / "assets" / "brand.png").write_bytes(png((200, 10, 10)))
    state, why = plan_states(folder)["hero"]
    assert state == "changed"
    assert len(why) == 1 and why[0].startswith("asset file changed: assets/brand.png (")


def test_a_field_edit_and_a_refresh_say_so(folder: Path) -> None:
    run(folder)
    edit(folder, "prompt: a glaze swatch", "aspectRatio: portrait\n    prompt: a glaze swatch")
    states = plan_states(folder, "--refresh", "hero")
    assert states["swatch"] == ("changed", ["aspectRatio: landscape → portrait"])
    assert states["hero"] == ("changed", ["refresh asked"])
    assert states[GRID[0]][0] == "changed"  # its upstream is made again


def test_a_lock_for_another_backend_says_so(folder: Path) -> None:
    run(folder)
    lock = folder / "teapot.lock.json"
    data = json.loads(lock.read_text())
    data["backend"] = "useapi"
    for entry in data["nodes"].values():
        entry["key"] = "0" * 64  # keys for the real API differ from the simulator's
    lock.write_text(json.dumps(data))
    state, why = plan_states(folder, "--backend", "sim")["swatch"]
    assert state == "cached"  # the sim result is cached; it differs from the lock
    assert why == ["backend: useapi → sim"]


def test_an_old_lock_without_requests_is_read_as_unknown(folder: Path) -> None:
    run(folder)
    lock = folder / "teapot.lock.json"
    data = json.loads(lock.read_text())
    for entry in data["nodes"].values():
        del entry["request"]
    del data["api"]
    lock.write_text(json.dumps(data))
    (folder / "out" / "manifest.json").unlink()  # nothing to fill the requests in from
    edit(folder, "celadon green", "cobalt blue")
    assert plan_states(folder)["swatch"] == (
        "changed", ["key differs from teapot.lock.json (it records no request to compare)"]
    )


def test_the_output_folders_manifest_fills_in_what_an_old_lock_lacks(folder: Path) -> None:
    run(folder)
    lock = folder / "teapot.lock.json"
    data = json.loads(lock.read_text())
    for entry in data["nodes"].values():
        del entry["request"]
    lock.write_text(json.dumps(data))
    edit(folder, "celadon green", "cobalt blue")
    state, why = plan_states(folder)["swatch"]
    assert (state, why) == ("changed", ['prompt: "…swatch, celadon green" → "…swatch, cobalt '
                                        'blue"'])


def test_why_of_an_unknown_node_is_a_usage_error(folder: Path) -> None:
    result = flowpipe("why", str(folder / "teapot.yaml"), "swatches")
    assert result.exit_code == 2
    assert "no node 'swatches'" in result.stderr and "did you mean 'swatch'" in result.stderr


def test_text_change_shows_each_change_with_a_word_of_context() -> None:
    assert text_change("a red shoe on a ridge", "a blue shoe on a ridge") == \
        '"a red shoe…" → "a blue shoe…"'
    assert text_change("a shoe", "a shoe at dawn") == '"…shoe" → "…shoe at dawn"'
    assert text_change("one two three four five six", "one 2 three four five 6") == \
        '"one two three…" → "one 2 three…"; "…five six" → "…five 6"'
    assert text_change("a  b", "a b") == "whitespace changed"
    assert text_change("1 2 3 4 5 6 7", "x 2 y 4 z 6 w").endswith("(+2 more)")


def test_explain_plan_reads_the_cache_and_writes_nothing(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\nname: r\nsteps:\n  a: {prompt: x, count: 1}\n"
                      "  b: {prompt: y, count: 1, context: [a.0]}\n")
    plan = build_plan(recipe)
    cache = ResponseCache(MemoryCache())
    assert {v.state for v in explain_plan(plan, cache, None).values()} == {"new"}
    jpeg = b"\xff\xd8" + b"x" * 10 + b"\xff\xd9"
    image = CachedImage(sha256_hex(jpeg), 1, "id", 8, 8)
    cache.put_generation(request_key(plan.nodes["a"], {}, "sim"),
                         CachedGeneration((image,), "acct", "imagen-4", 1, 1.0), [jpeg])
    keys_before = set(cache.store.keys())
    verdicts = explain_plan(plan, cache, None)
    assert verdicts["a"] == Verdict("cached")
    assert verdicts["b"] == Verdict("new", ("not in the cache",))
    assert set(cache.store.keys()) == keys_before


def test_a_verdicts_headline_and_chain(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\nname: r\nsteps:\n  a: {prompt: x}\n"
                      "  b: {prompt: y, context: [a.0]}\n  c: {prompt: z, context: [b.0, a.1]}\n")
    plan = build_plan(recipe)
    explainer = Explainer(plan, None)
    assert explainer.explain(plan.nodes["a"], {}, key=None, cached=False).headline == "new: " \
        "not in the cache"
    verdicts = {
        "a": Verdict("changed", ("prompt: x → y",)),
        "b": Verdict("changed", ("upstream image is made again: context a.0 (a changed)",)),
        "c": Verdict("changed", ("upstream image is made again: context b.0 (b changed)",)),
    }
    assert list(chain(plan, verdicts, "c")) == [
        (0, "c: changed"),
        (1, "upstream image is made again: context b.0 (b changed)"),
        (1, "b: changed"),
        (2, "upstream image is made again: context a.0 (a changed)"),
        (2, "a: changed"),
        (3, "prompt: x → y"),
        (1, "a: changed (see above)"),
    ]
    assert Verdict("changed", ("prompt: x → y",)).headline == "changed: prompt"
    baseline = Baseline("r.lock.json", "sim", None, {"a": LockEntry("k")})
    assert Explainer(plan, baseline).explain(plan.nodes["b"], {}, key=None, cached=False) == \
        Verdict("new", ("not in r.lock.json",))


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def review_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/review-loop.yaml (hero.pick feeds the poster) with its picks file, alone."""
    monkeypatch.setenv("FLOWPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.delenv("FLOWPIPE_API_URL", raising=False)
    for name in ("review-loop.yaml", "review-loop.picks.yaml"):
        (tmp_path / name).write_bytes((EXAMPLES / name).read_bytes())
    return tmp_path


def pick_plan(folder: Path) -> dict[str, dict[str, object]]:
    result = flowpipe("plan", str(folder / "review-loop.yaml"), "--json", "-o",
                      str(folder / "out"))
    assert result.exit_code == 0, result.output
    return {n["id"]: n for n in json.loads(result.stdout)["nodes"]}


def test_plan_and_why_of_a_pick_recipe_before_any_run(review_loop: Path) -> None:
    nodes = pick_plan(review_loop)
    hero_key = nodes["hero"]["provisional_key"]
    poster = nodes["poster"]
    assert poster["request"]["contextReference_1"] == f"node:{hero_key}#pick"
    assert poster["state"] == "new"
    (review_loop / "review-loop.picks.yaml").unlink()
    assert pick_plan(review_loop)["poster"]["state"] == "new"
    result = flowpipe("why", str(review_loop / "review-loop.yaml"), "banner")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == ["banner: new", "  not in the cache",
                                              "  poster: new"]


def test_plan_resolves_a_pick_through_the_cache_and_the_picks_file(review_loop: Path) -> None:
    recipe = review_loop / "review-loop.yaml"
    result = flowpipe("run", str(recipe), "-o", str(review_loop / "out"), "--plain",
                      "--no-report")
    assert result.exit_code == 0, result.output
    assert {n["state"] for n in pick_plan(review_loop).values()} == {"cached"}
    picks = review_loop / "review-loop.picks.yaml"
    committed = picks.read_text()
    picks.unlink()  # no pick: the poster waits for review, the banner for the poster
    nodes = pick_plan(review_loop)
    assert nodes["hero"]["state"] == "cached"
    assert (nodes["poster"]["state"], nodes["poster"]["why"]) == (
        "new", ["waits for review: no image of hero is picked yet (context hero.pick)"])
    assert nodes["banner"]["why"] == [
        "upstream image not made yet: context poster.0 (poster is new)"]
    picks.write_text(committed.replace("image: 2", "image: 1"))  # names image 2's bytes
    result = flowpipe("why", str(recipe), "poster")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "poster: new",
        "  waits for review: the pick of hero is stale: image 1 is not what hero made now "
        "(context hero.pick)",
    ]


def test_auto_without_a_token_computes_keys_for_the_locks_backend(
    folder: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CI with a lock made on the real API and no token: plan and why read the lock's
    backend, as a frozen run does, instead of calling every node changed."""
    from flowpipe.planner import node_request
    from flowpipe.store.lock import Lock, lock_path, write_lock

    recipe = folder / "teapot.yaml"
    swatch = build_plan(recipe, backend="useapi").nodes["swatch"]
    write_lock(lock_path(recipe), Lock(recipe="teapot", backend="useapi", nodes={
        "swatch": LockEntry(request_key(swatch, {}, "useapi"), ("0" * 64,),
                            node_request(swatch, {}))}))
    same = ("new", ["not in the cache (teapot.lock.json has this very request)"])
    assert plan_states(folder)["swatch"] == same
    assert plan_states(folder, "--backend", "sim")["swatch"] == (
        "changed", ["backend: useapi → sim"])
    monkeypatch.setenv("USEAPI_TOKEN", "t" * 20)  # a token decides: where run would send
    assert plan_states(folder)["swatch"] == same
    monkeypatch.setenv("FLOWPIPE_API_URL", "http://127.0.0.1:9")  # a simulator's URL
    assert plan_states(folder)["swatch"][0] == "changed"
