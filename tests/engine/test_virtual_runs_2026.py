"""Whole 2026-07 runs on a virtual clock over a mock transport (tests/engine/fakeapi2026.py).

Quota pauses by reason, the max_wait stop, captcha retries, fifeUrl re-makes, PNG files,
references by id on the account that made them, and upscale nodes: each is a run of
minutes or hours of API time that ends in milliseconds, with no server and no sleep.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowpipe.cli import cli
from flowpipe.dialects import (
    NO_ELIGIBLE_ACCOUNT,
    PER_MODEL_DAILY_QUOTA_REACHED,
    USER_REQUESTS_THROTTLED,
)
from flowpipe.engine.clock import VirtualClock
from flowpipe.engine.retry import RetryPolicy
from flowpipe.errors import UsageError
from flowpipe.events import (
    AccountPaused,
    AccountResumed,
    Event,
    NodeRetried,
    NodeStarted,
    RunStarted,
    WindowChanged,
)
from flowpipe.sim.bodies import no_eligible_account, rejected_429

from .conftest import virtual_run
from .fakeapi2026 import PAUSE, FakeAPI2026

A, B = "a@example.com", "b@example.com"
PRO, LITE = "nano-banana-pro", "nano-banana-2-lite"
MIDNIGHT = 1784160000.0  # 2026-07-16T00:00:00Z


def _shots(n: int, *, model: str = LITE, step: str = "shot", count: int = 1) -> str:
    values = ", ".join(str(i) for i in range(1, n + 1))
    return (f"  {step}:\n    matrix: {{n: [{values}]}}\n"
            f"    prompt: \"{step} number {{{{ n }}}}\"\n    model: {model}\n    count: {count}\n")


def _recipe(write_recipe: Callable[[str], Path], steps: str, defaults: str = "") -> Path:
    return write_recipe(
        'version: 1\nname: lookbook\napi: "2026-07"\n'
        f"defaults: {{aspectRatio: \"16:9\"{defaults}}}\nsteps:\n{steps}"
    )


def _two(**extra: object) -> FakeAPI2026:
    return FakeAPI2026(VirtualClock(), accounts=(A, B), **extra)  # type: ignore[arg-type]


def _of(events: list[Event], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


# -- account pauses ---------------------------------------------------------------------


def test_a_throttled_account_gets_nothing_for_30_minutes_while_the_run_goes_on(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, _shots(10))
    api = _two(throttle={A: 1.0}, latency=(400.0, 400.0))
    events: list[Event] = []
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B), fixed_concurrency=1,
                         progress=events.append)
    assert result.ok, result.message
    [paused] = _of(events, AccountPaused)
    assert (paused.account, paused.model, paused.reason) == (A, None, USER_REQUESTS_THROTTLED)
    assert paused.until - paused.t == pytest.approx(PAUSE)
    # nothing reached a for the 30 minutes; b went on meanwhile; a came back after
    assert api.sent_to(A, paused.t + 1e-6, paused.until) == 0
    assert api.paused_hits == {}
    assert api.sent_to(B, paused.t, paused.until) >= 4
    [resumed] = _of(events, AccountResumed)
    assert resumed.account == A and resumed.t == pytest.approx(paused.until)
    assert api.sent_to(A, paused.until, math.inf) >= 1
    # a pause is neither a capacity rejection nor a retry of the node
    assert result.summary["rejections"] == 0 and result.summary["retries"] == 0
    assert result.summary["pauses"] == 1
    [logged] = json.loads((tmp_path / "out" / "run.json").read_text())["pauses"]
    assert logged["account"] == A and logged["reason"] == USER_REQUESTS_THROTTLED
    assert logged["resumed"] == pytest.approx(paused.until, abs=1e-3)


def test_a_pause_never_shrinks_a_window(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe, _shots(60))
    api = _two(throttle={A: 10.0}, latency=(15.0, 15.0))
    events: list[Event] = []
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B), progress=events.append)
    assert result.ok, result.message
    assert [e.account for e in _of(events, AccountPaused)] == [A]
    for account in (A, B):
        windows = [e.window for e in _of(events, WindowChanged) if e.account == account]
        assert windows == sorted(windows), (account, windows)  # only ever raised
    assert max(e.window for e in _of(events, WindowChanged) if e.account == A) > 3


def test_every_account_paused_beyond_max_wait_stops_with_exit_3_and_says_who_comes_back(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, _shots(8))
    api = _two(throttle={A: 1.0, B: 1.0}, latency=(100.0, 100.0))
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B), fixed_concurrency=1)
    assert result.exit_code == 3 and result.outcome == "stopped"
    assert "max_wait" in (result.message or "")
    for account in (A, B):
        assert f"{account} back at " in (result.message or "")
    assert "UTC" in (result.message or "") and USER_REQUESTS_THROTTLED in (result.message or "")
    states = {n.state for n in result.nodes.values()}
    assert states == {"done", "skipped"}  # the two made before the throttle are kept
    assert sum(n.state == "done" for n in result.nodes.values()) == 2
    assert api.paused_hits == {}
    assert api.clock.time() < PAUSE  # it did not sit out the pause


def test_a_pause_within_max_wait_is_waited_out(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe, _shots(4))
    api = _two(throttle={A: 1.0, B: 1.0}, latency=(100.0, 100.0))
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B), fixed_concurrency=1,
                         max_wait=PAUSE)
    assert result.ok, result.message
    assert api.clock.time() >= 100.0 + PAUSE
    assert api.paused_hits == {}


# -- model quotas -----------------------------------------------------------------------


def test_a_model_quota_stops_only_that_model_on_that_account(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, _shots(4, model=PRO, step="pro") + _shots(6, step="lite"))
    api = _two(model_quota={PRO: 1}, latency=(100.0, 100.0), wall_start=MIDNIGHT - 1800.0)
    events: list[Event] = []
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B), fixed_concurrency=1,
                         max_wait=3600.0, progress=events.append)
    assert result.ok, result.message
    pauses = _of(events, AccountPaused)
    assert pauses and {p.model for p in pauses} == {PRO}
    assert {p.reason for p in pauses} == {PER_MODEL_DAILY_QUOTA_REACHED}
    for pause in pauses:
        assert pause.until == pytest.approx(1800.0, abs=1.0)  # midnight UTC by the Date
        start = pause.t + 1e-6
        assert api.sent_to(pause.account, start, pause.until, model=PRO) == 0
        assert api.sent_to(pause.account, start, pause.until, model=LITE) >= 1  # goes on
    assert api.paused_hits == {}
    assert api.sent_to(A, 1800.0, math.inf, model=PRO) + api.sent_to(B, 1800.0, math.inf,
                                                                       model=PRO) >= 1


def test_when_only_a_paused_model_is_left_the_run_stops_after_the_rest(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, _shots(4, model=PRO, step="pro") + _shots(4, step="lite"))
    api = _two(model_quota={PRO: 1}, latency=(100.0, 100.0), wall_start=MIDNIGHT - 7200.0)
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B), fixed_concurrency=1)
    assert result.exit_code == 3, result.message
    assert f"{A} ({PRO}) back at" in (result.message or "")
    assert f"{B} ({PRO}) back at" in (result.message or "")
    lite = [n for n in result.nodes.values() if n.step == "lite"]
    assert all(n.state == "done" for n in lite)  # every node another model could make
    assert sum(n.state == "done" for n in result.nodes.values() if n.step == "pro") == 2


# -- the service, capacity ----------------------------------------------------------------


def test_no_eligible_account_waits_for_retry_after(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe, _shots(3))
    api = _two(no_eligible_until=120.0, latency=(10.0, 10.0))
    events: list[Event] = []
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B), progress=events.append)
    assert result.ok, result.message
    pauses = _of(events, AccountPaused)
    assert {p.account for p in pauses} == {A, B}
    assert {p.reason for p in pauses} == {NO_ELIGIBLE_ACCOUNT}
    first = min(e.t for e in _of(events, NodeStarted) if e.attempt == 2)
    assert first >= 120.0 - 1e-6
    assert result.summary["rejections"] == 0


def test_a_429_without_a_reason_stays_capacity(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe, _shots(8))
    api = FakeAPI2026(VirtualClock(), capacity=2, latency=(10.0, 10.0), reject_status="429")
    events: list[Event] = []
    result = virtual_run(recipe, api, tmp_path, fixed_concurrency=4, progress=events.append)
    assert result.ok
    assert result.summary["rejections"] > 0
    assert not _of(events, AccountPaused)
    assert {e.action for e in _of(events, NodeRetried)} == {"retry"}


# -- captcha ----------------------------------------------------------------------------


def test_a_refused_captcha_retries_then_fails_that_node_alone(
    write_recipe, tmp_path: Path
) -> None:
    steps = _shots(3) + '  hopeless:\n    prompt: "a hopeless captcha"\n    count: 1\n' \
        '  shaky:\n    prompt: "a shaky captcha"\n    count: 1\n'
    recipe = _recipe(write_recipe, steps, defaults=", captchaRetry: 4")
    api = FakeAPI2026(VirtualClock(), captcha_fails={"hopeless": 99, "shaky": 2})
    result = virtual_run(recipe, api, tmp_path)
    assert result.exit_code == 1
    hopeless = result.nodes["hopeless"]
    assert hopeless.state == "failed" and hopeless.error is not None
    assert hopeless.error.type == "CaptchaError" and "captcha_quality" in (hopeless.reason or "")
    assert sum(1 for b in api.bodies if "hopeless" in b["prompt"]) == 4  # 1 + 3 retries
    assert result.nodes["shaky"].state == "done"
    assert all(n.state == "done" for n in result.nodes.values() if n.step == "shot")
    assert {b["captchaRetry"] for b in api.bodies} == {4}  # from the recipe's defaults
    assert api.statuses["403"] == 4 + 2


def test_the_captcha_retry_option_wins_over_the_recipe(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe, _shots(2), defaults=", captchaRetry: 4")
    api = FakeAPI2026(VirtualClock())
    assert virtual_run(recipe, api, tmp_path, captcha_retry=9).ok
    assert {b["captchaRetry"] for b in api.bodies} == {9}


# -- images -----------------------------------------------------------------------------


def test_an_expired_fife_url_remakes_its_node_counted_as_a_retry(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, _shots(3, count=2))
    api = FakeAPI2026(VirtualClock(), expire_once={"shot number 2"})
    events: list[Event] = []
    result = virtual_run(recipe, api, tmp_path, progress=events.append)
    assert result.ok, result.message
    assert api.fife_reads["expired"] >= 1
    [retry] = _of(events, NodeRetried)
    assert retry.node == "shot[n=2]" and retry.error.type == "ImageURLError"
    assert result.summary["retries"] == 1
    assert sum(1 for b in api.bodies if b["prompt"] == "shot number 2") == 2
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    again = next(n for n in manifest["nodes"] if n["id"] == "shot[n=2]")
    assert again["attempts"] == 2 and len(again["images"]) == 2


def test_png_answers_are_written_as_png_everywhere(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe, _shots(6, count=2))
    api = FakeAPI2026(VirtualClock())
    result = virtual_run(recipe, api, tmp_path)
    assert result.ok
    out = tmp_path / "out"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.suffix in
                   (".png", ".jpg"))
    assert any(f.endswith(".png") for f in files) and any(f.endswith(".jpg") for f in files)
    for path in result.images:
        magic = b"\x89PNG" if path.suffix == ".png" else b"\xff\xd8\xff"
        assert path.read_bytes().startswith(magic), path
    manifest = json.loads((out / "manifest.json").read_text())
    listed = sorted(i["path"] for n in manifest["nodes"] for i in n["images"])
    assert listed == files
    lock = json.loads((recipe.parent / "recipe.lock.json").read_text())
    assert sum(len(e["images"]) for e in lock["nodes"].values()) == len(files)


# -- references -------------------------------------------------------------------------


def test_a_generated_image_is_referenced_by_id_on_its_own_account(
    write_recipe, tmp_path: Path
) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "mark.png").write_bytes(_png())
    steps = ('  base:\n    prompt: "the base"\n    count: 2\n'
             '  uses:\n    matrix: {n: [1, 2, 3]}\n    prompt: "use {{ n }}"\n    count: 1\n'
             '    context: [base.0, base.1, assets.mark]\n')
    recipe = write_recipe(
        'version: 1\nname: refs\napi: "2026-07"\nassets: {mark: mark.png}\nsteps:\n' + steps)
    api = FakeAPI2026(VirtualClock())
    result = virtual_run(recipe, api, tmp_path)
    assert result.ok, result.message
    assert api.generated_reuploads == {}
    assert len(api.uploads) == 1  # the asset only, once
    base_ids = api._generated_ids
    uses = [b for b in api.bodies if b["prompt"].startswith("use ")]
    assert all({b["reference_1"], b["reference_2"]} <= base_ids for b in uses)
    assert not any(k.startswith(("styleReference", "contextReference")) for b in uses for k in b)


def test_an_image_needed_on_another_account_is_uploaded_there_only(
    write_recipe, tmp_path: Path
) -> None:
    steps = ('  base:\n    prompt: "the base"\n    count: 2\n'
             '  uses:\n    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}\n    prompt: "use {{ n }}"\n'
             '    count: 1\n    context: [base.0, base.1]\n')
    recipe = _recipe(write_recipe, steps)
    api = _two()
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B))
    assert result.ok, result.message
    maker = result.run_info["nodes"]["base"]["account"]
    other = B if maker == A else A
    assert {account for account, _ in api.uploads} == {other}  # PNG or JPEG, by its bytes
    assert all(n == 1 for n in api.uploads.values())
    assert api.generated_reuploads == {}
    assert api.statuses["403"] == 0


# -- upscale ----------------------------------------------------------------------------

UPSCALE = """\
  base:
    prompt: "the base"
    count: 2
  big:
    upscale: base.1
    resolution: 2k
  after:
    matrix: {n: [1, 2, 3, 4, 5, 6]}
    prompt: "from the big one {{ n }}"
    count: 1
    context: [big.0]
"""


def test_an_upscale_chain_runs_on_the_sources_account_and_is_cached_and_locked(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, UPSCALE)
    api = _two()
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B))
    assert result.ok, result.message
    maker = result.run_info["nodes"]["base"]["account"]
    [upscale] = [s for s in api.sent if s.path == "/images/upscale"]
    assert upscale.account == maker == result.run_info["nodes"]["big"]["account"]
    assert api.upscales == 1
    big = result.nodes["big"]
    assert big.images == (tmp_path / "out" / "big" / "default" / "0.jpg",)
    # its answer has no id: its bytes go up once to each account that needs them
    locked = json.loads((recipe.parent / "recipe.lock.json").read_text())["nodes"]["big"]
    [sha] = locked["images"]
    assert api.uploads and {up for _, up in api.uploads} == {sha}
    assert all(n == 1 for n in api.uploads.values())
    assert api.generated_reuploads == {}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entry = next(n for n in manifest["nodes"] if n["id"] == "big")
    assert [(r["role"], r["text"]) for r in entry["references"]] == [("source", "base.1")]
    assert entry["request"]["resolution"] == "2k" and entry["images"][0]["media_generation_id"] \
        is None
    # again: nothing is sent; frozen: nothing is sent and the lock holds
    again = FakeAPI2026(VirtualClock(), accounts=(A, B))
    assert virtual_run(recipe, again, tmp_path, accounts=(A, B)).summary["api_calls"] == 0
    frozen = FakeAPI2026(VirtualClock(), accounts=(A, B))
    assert virtual_run(recipe, frozen, tmp_path, accounts=(A, B), frozen=True).ok
    assert frozen.sent == [] and again.sent == []


def test_a_matrix_of_resolutions_sends_one_upscale_per_resolution(
    write_recipe, tmp_path: Path
) -> None:
    """The 4k node is not the 2k one answered from the cache: each is its own request."""
    recipe = _recipe(write_recipe, """\
  base:
    prompt: "the base"
    count: 1
  big:
    matrix: {resolution: [2k, 4k]}
    upscale: base.0
""")
    api = _two()
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B))
    assert result.ok, result.message
    assert api.upscales == 2 and result.summary["cached"] == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    sent = {n["id"]: n["request"]["resolution"] for n in manifest["nodes"] if "big" in n["id"]}
    assert sent == {"big[resolution=2k]": "2k", "big[resolution=4k]": "4k"}


def test_an_upscale_waits_for_its_sources_account(write_recipe, tmp_path: Path) -> None:
    """The maker of base is throttled when the upscale goes out; the other account is free,
    but an uploaded copy may not be upscalable: the upscale waits for the maker."""
    recipe = _recipe(write_recipe, UPSCALE)
    api = _two(throttle={A: 50.0, B: 50.0}, latency=(100.0, 100.0))
    result = virtual_run(recipe, api, tmp_path, accounts=(A, B), fixed_concurrency=1,
                         max_wait=PAUSE)
    assert result.ok, result.message
    maker = result.run_info["nodes"]["base"]["account"]
    upscales = [s for s in api.sent if s.path == "/images/upscale"]
    assert [s.account for s in upscales] == [maker, maker]  # throttled, then after the pause
    assert upscales[1].t >= upscales[0].t + PAUSE - 1e-6
    assert api.statuses["400"] == 0 and api.paused_hits == {}


def test_plan_warnings_come_with_the_start_of_the_run(write_recipe, tmp_path: Path) -> None:
    recipe = _recipe(write_recipe, '  old:\n    prompt: "a shoe"\n    model: imagen-4\n'
                                   '    count: 1\n')
    events: list[Event] = []
    assert virtual_run(recipe, FakeAPI2026(VirtualClock()), tmp_path,
                       progress=events.append).ok
    [started] = _of(events, RunStarted)
    assert any("imagen-4 now runs nano-banana-2-lite" in w for w in started.warnings)
    assert all("recipe.yaml:" in w and ": warning: " in w for w in started.warnings)


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


# -- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_line", "options", "expect"),
    [
        pytest.param("", {"captcha_retry": 3}, "speaks api 2025-11, which has no captchaRetry",
                     id="2025-11"),
        pytest.param('api: "2026-07"\n', {"captcha_retry": 11}, "must be 1-10", id="range"),
        pytest.param('api: "2026-07"\n', {"max_wait": -1.0}, "must be 0 or more", id="wait"),
    ],
)
def test_dialect_options_are_checked_before_anything_is_sent(
    write_recipe, tmp_path: Path, api_line: str, options: dict[str, object], expect: str
) -> None:
    recipe = write_recipe(f"version: 1\nname: o\n{api_line}steps:\n  s:\n    prompt: p\n")
    api = FakeAPI2026(VirtualClock())
    with pytest.raises(UsageError, match=expect) as caught:
        virtual_run(recipe, api, tmp_path, **options)
    assert caught.value.option == next(iter(options))
    assert api.requests == [] and not (tmp_path / "out").exists()


def test_the_cli_names_the_flag_of_a_bad_dialect_option(write_recipe) -> None:
    recipe = write_recipe("version: 1\nname: o\nsteps:\n  s:\n    prompt: p\n")
    result = CliRunner().invoke(cli, ["run", str(recipe), "--captcha-retry", "3", "--plain"])
    assert result.exit_code == 2
    assert "flowpipe: --captcha-retry: recipe.yaml speaks api 2025-11, which has no " \
        "captchaRetry" in result.stderr


# -- a pause that holds nothing back (review A-2) ------------------------------------------

UPSCALE_AND_MORE = """\
  base:
    prompt: "the base"
    model: nano-banana-2
    count: 1
  big:
    upscale: base.0
    resolution: 2k
  more:
    prompt: "more of the base"
    model: nano-banana-2
    count: 1
    context: [base.0]
"""


def test_a_model_quota_on_an_upscale_holds_upscales_only_and_is_not_resent(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, UPSCALE_AND_MORE)
    api = FakeAPI2026(VirtualClock(), accounts=(A,), upscale_quota=0)
    events: list[Event] = []
    result = virtual_run(recipe, api, tmp_path, accounts=(A,), progress=events.append)
    assert [s.path for s in api.sent].count("/images/upscale") == 1  # not resent at once
    [paused] = _of(events, AccountPaused)
    assert (paused.account, paused.model) == (A, "upscale")
    # the source model is not held: a generation of it on that account goes on
    assert result.nodes["more"].state == "done"
    assert result.outcome == "stopped" and "max_wait" in (result.message or "")
    assert "(upscale)" in (result.message or "")


class _NoEligibleAtOnce(FakeAPI2026):
    """``no_eligible_account`` with ``Retry-After: 0`` for the first ``refusals`` requests."""

    refusals: int = 3

    def _quota(self, account: str, model: str | None) -> Any:
        if self.refusals > 0:
            self.refusals -= 1
            return self._answer("/images", 429, no_eligible_account(0), {"retry-after": "0"})
        return super()._quota(account, model)


def test_a_pause_of_no_time_waits_like_a_capacity_retry_before_the_node_goes_again(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, _shots(1))
    api = _NoEligibleAtOnce(VirtualClock(), accounts=(A,))
    result = virtual_run(recipe, api, tmp_path, accounts=(A,))
    assert result.ok, result.message
    times = [s.t for s in api.sent if s.path == "/images"]
    assert len(times) == 4
    low, high = RetryPolicy().capacity_delay
    assert all(low <= b - a <= high for a, b in itertools.pairwise(times))


class _ThrottledTwice(FakeAPI2026):
    """The first two requests are throttled: the first at once, the second 10 s later
    (it was in flight), which extends the account's pause."""

    answered: int = 0

    async def _images(self, body: dict[str, Any]) -> Any:
        n, self.answered = self.answered, self.answered + 1
        if n < 2:
            await self.clock.sleep(10.0 * n)
            return self._answer("/images", 429, rejected_429(USER_REQUESTS_THROTTLED))
        return await super()._images(body)


def test_an_extended_pause_is_one_pause_in_the_summary_as_in_the_list(
    write_recipe, tmp_path: Path
) -> None:
    recipe = _recipe(write_recipe, _shots(2))
    api = _ThrottledTwice(VirtualClock(), accounts=(A,))
    events: list[Event] = []
    result = virtual_run(recipe, api, tmp_path, accounts=(A,), fixed_concurrency=2,
                         max_wait=2 * PAUSE, progress=events.append)
    assert result.ok, result.message
    assert len(_of(events, AccountPaused)) == 2  # the pause, then its extension
    listed = json.loads((tmp_path / "out" / "run.json").read_text())["pauses"]
    assert len(listed) == 1
    assert result.summary["pauses"] == len(listed)
