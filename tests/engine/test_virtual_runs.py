"""Whole runs on a virtual clock over a mock transport: scheduler, limiter, accounts,
retries and moderation fallback in milliseconds, with no server and no real sleep.

Each test drives ``flowpipe.run_async`` through ``FakeAPI`` (tests/engine/fakeapi.py);
a generation takes 10-20 API seconds of virtual time, so the assertions can also speak
about the run's clock (the retry delays, the window's growth).
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from flowpipe.api import FetchPolicy, HTTPRequest, HTTPResponse, Timeouts
from flowpipe.engine.clock import VirtualClock
from flowpipe.engine.ledger import OutputLedger
from flowpipe.engine.limiter import AdaptiveLimiter, Outcome
from flowpipe.engine.ready import ReadyQueue
from flowpipe.engine.scheduler import Scheduler
from flowpipe.errors import UsageError
from flowpipe.events import (
    Event,
    InflightChanged,
    NodeDone,
    NodeRetried,
    NodeStarted,
    WindowChanged,
)
from flowpipe.store.claims import STALE_AFTER, KeyClaims
from flowpipe.store.leases import LEASE_SECONDS

from .conftest import virtual_run
from .fakeapi import TOKEN, FakeAPI

CHAIN = """
version: 1
name: chain
defaults: {model: imagen-4, aspectRatio: landscape, count: 2}
steps:
  hero:
    prompt: "trail shoe on a ridge at golden hour"
    seed: 1234
  closeup:
    matrix: {angle: [front, side]}
    prompt: "studio close-up of the trail shoe, {{ angle }} view"
    model: nano-banana
    context: [hero.0]
  poster:
    style: hero.1
    context: ["closeup[angle=side].1"]
    prompt: "poster featuring the trail shoe"
    aspectRatio: portrait
"""


def _images(out: Path) -> list[Path]:
    return sorted(out.rglob("*.jpg"))


def test_faults_every_node_ends_done_or_failed_with_a_reason(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: faults
        defaults: {model: imagen-4, count: 1}
        steps:
          shot:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}
            prompt: "product shot number {{ n }}"
          detail:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
            context: ["shot[n={{ n }}].0"]
            prompt: "detail of shot {{ n }}"
        """
    )
    api = FakeAPI(VirtualClock(), capacity=3, moderation_rate=0.05, fault_rate=0.05, seed=3)
    result = virtual_run(recipe, api, tmp_path, fixed_concurrency=8)
    statuses = api.images_statuses()
    rejected = statuses["429"] + statuses["503"]
    assert rejected / api.images_requests >= 0.3  # the load really was hostile
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["nodes"]) == 30
    for node in manifest["nodes"]:
        assert node["status"] in ("done", "failed", "skipped"), node
        if node["status"] != "done":
            assert node["error"]["type"] and node["error"]["message"], node
    for path in _images(tmp_path / "out"):
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            im.load()  # raises on a truncated or partial JPEG
    assert not list((tmp_path / "out").rglob("*.tmp"))
    assert result.exit_code in (0, 1)


@pytest.mark.parametrize(
    ("api_extra", "options_extra", "expect"),
    [
        pytest.param({"token": "other-token-xyz123"}, {}, "Unauthorized", id="401-bad-token"),
        pytest.param({"credits": 2}, {}, "subscription", id="402-credits"),
        pytest.param(
            {"accounts": (), "broken": ("sim@example.com",)},
            {"accounts": ("sim@example.com",)},
            "refresh",
            id="596-session",
        ),
        pytest.param(
            {"accounts": (), "broken": ("sim@example.com",)}, {}, "refresh", id="596-unhealthy"
        ),
    ],
)
def test_stops_exit_3_and_token_never_written(
    write_recipe, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys,
    api_extra: dict[str, object], options_extra: dict[str, object], expect: str,
) -> None:
    recipe = write_recipe(CHAIN)
    caplog.set_level(logging.DEBUG)
    api = FakeAPI(VirtualClock(), **api_extra)  # type: ignore[arg-type]
    result = virtual_run(recipe, api, tmp_path, report=True, **options_extra)
    assert result.exit_code == 3
    assert result.outcome == "stopped"
    assert expect.lower() in (result.message or "").lower()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert all(n["status"] in ("done", "skipped", "failed") for n in manifest["nodes"])
    captured = capsys.readouterr()
    haystacks = [caplog.text, captured.out, captured.err]
    for folder in (tmp_path / "out", tmp_path / "cache", recipe.parent):
        haystacks += [p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()]
    assert not any(TOKEN in text for text in haystacks)


def test_402_keeps_what_finished(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    result = virtual_run(recipe, FakeAPI(VirtualClock(), credits=1), tmp_path)
    assert result.exit_code == 3
    assert (tmp_path / "out" / "hero" / "default" / "0.jpg").exists()
    lock = json.loads((recipe.parent / "recipe.lock.json").read_text())
    assert list(lock["nodes"]) == ["hero"]


def test_unknown_account_is_dropped_and_others_finish(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(CHAIN)
    api = FakeAPI(VirtualClock(), accounts=("a@example.com", "b@example.com"))
    result = virtual_run(recipe, api, tmp_path,
                         accounts=("ghost@example.com", "b@example.com"))
    assert result.exit_code == 0, result.message
    assert api.statuses["404"] >= 1
    used = {n["account"] for n in result.run_info["nodes"].values() if n["account"]}
    assert "b@example.com" in used


def test_references_cross_accounts_by_upload(write_recipe, tmp_path: Path) -> None:
    """Nodes spread over two accounts: a reference made on one is uploaded to the other."""
    recipe = write_recipe(
        """
        version: 1
        name: spread
        defaults: {count: 1, model: imagen-4}
        steps:
          base:
            prompt: "a base image"
          uses:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
            context: [base.0]
            prompt: "variation {{ n }}"
        """
    )
    api = FakeAPI(VirtualClock(), accounts=("a@example.com", "b@example.com"))
    result = virtual_run(recipe, api, tmp_path, accounts=("a@example.com", "b@example.com"))
    assert result.exit_code == 0, result.message
    assert api.statuses["403"] == 0  # never sent another account's id
    used = {n["account"] for n in result.run_info["nodes"].values() if n["account"]}
    assert used == {"a@example.com", "b@example.com"}  # 8 ready nodes > one window of 3
    assert result.summary["uploads"] >= 1


def _logo_recipe(write_recipe, tmp_path: Path, *, steps: str) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (10, 120, 200)).save(folder / "logo.png", "PNG")
    Image.new("RGB", (32, 32), (200, 120, 10)).save(folder / "mark.png", "PNG")
    return write_recipe(
        "version: 1\nname: shared-asset\ndefaults: {count: 1, model: imagen-4}\n"
        "assets: {logo: logo.png, mark: mark.png}\nsteps:\n" + steps
    )


def test_an_asset_shared_by_parallel_nodes_is_uploaded_once(write_recipe, tmp_path: Path) -> None:
    recipe = _logo_recipe(write_recipe, tmp_path, steps="""\
  badge:
    matrix: {n: [1, 2, 3, 4, 5, 6]}
    context: [assets.logo]
    prompt: "badge {{ n }} with the logo"
""")
    api = FakeAPI(VirtualClock())
    result = virtual_run(recipe, api, tmp_path)
    assert sum(api.uploads.values()) == 1
    assert result.exit_code == 0
    assert result.summary["uploads"] == 1


def test_one_403_reuploads_each_reference_once_however_many_retries_follow(
    write_recipe, tmp_path: Path
) -> None:
    """Issue 15: after one 403 every later retry re-uploaded every reference (22 uploads of
    2 images). At most one upload per (account, content) per 403."""
    recipe = _logo_recipe(write_recipe, tmp_path, steps="""\
  badge:
    matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}
    context: [assets.logo, assets.mark]
    prompt: "badge {{ n }} with the logo and the mark"
""")
    api = FakeAPI(VirtualClock(), capacity=3, refuse_once={"sim@example.com"}, seed=1)
    result = virtual_run(recipe, api, tmp_path, fixed_concurrency=6)
    assert result.exit_code == 0, result.message
    assert api.statuses["403"] == 1
    assert api.images_statuses()["429"] + api.images_statuses()["503"] >= 5  # retries followed
    assert len(api.uploads) == 2
    assert all(count == 2 for count in api.uploads.values()), api.uploads  # first + one re-upload


def test_moderation_retries_then_falls_back_to_the_other_model(
    write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: fallback
        steps:
          risky:
            prompt: "a forbidden poster"
            model: imagen-4
            count: 1
            fallback_model: nano-banana
            moderation_retries: 2
        """
    )
    events: list[Event] = []
    api = FakeAPI(VirtualClock(), moderation_word="forbidden")
    result = virtual_run(recipe, api, tmp_path, progress=events.append)
    started = [(e.model, e.attempt) for e in events if isinstance(e, NodeStarted)]
    actions = [e.action for e in events if isinstance(e, NodeRetried)]
    # three moderated imagen-4 tries, the switch, then nano-banana: also moderated (the
    # marker word), retried twice more, then the node fails for good
    assert [m for m, _ in started] == ["imagen-4"] * 3 + ["nano-banana"] * 3
    assert actions == ["retry", "retry", "switch-model", "retry", "retry"]
    assert result.nodes["risky"].state == "failed"
    assert result.nodes["risky"].error is not None
    assert result.nodes["risky"].error.type == "ModerationError"


def test_capacity_retries_wait_five_to_ten_api_seconds_off_slot(
    write_recipe, tmp_path: Path
) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: busy
        defaults: {model: imagen-4, count: 1}
        steps:
          shot:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
            prompt: "shot {{ n }}"
        """
    )
    events: list[Event] = []
    api = FakeAPI(VirtualClock(), capacity=2, latency=(10.0, 10.0))
    result = virtual_run(recipe, api, tmp_path, progress=events.append, fixed_concurrency=4)
    assert result.ok
    retries = [e for e in events if isinstance(e, NodeRetried)]
    assert retries and all(e.action == "retry" and 5.0 <= e.delay <= 10.0 for e in retries)
    for retry in retries:  # the node goes out again no sooner than its delay
        again = next(e for e in events if isinstance(e, NodeStarted) and e.node == retry.node
                     and e.t > retry.t)
        assert again.t >= retry.t + retry.delay - 1e-6


def test_the_window_grows_to_the_capacity_on_the_runs_clock(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: wide
        defaults: {model: imagen-4, count: 1}
        steps:
          shot:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                         21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
                         39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56,
                         57, 58, 59, 60]}
            prompt: "shot {{ n }}"
        """
    )
    events: list[Event] = []
    api = FakeAPI(VirtualClock(), capacity=12, latency=(15.0, 15.0), reject_status="429")
    result = virtual_run(recipe, api, tmp_path, progress=events.append)
    assert result.ok
    windows = [e.window for e in events if isinstance(e, WindowChanged)]
    assert windows[0] == 3 and max(windows) >= 10  # it found most of the capacity
    assert max(windows) <= 20
    # 60 requests of 15 s: about 75 s at 12 in flight, 300 s at the initial 3
    assert api.clock.time() < 200.0


def test_records_are_on_disk_while_the_run_goes(write_recipe, tmp_path: Path) -> None:
    recipe = write_recipe(
        """
        version: 1
        name: streamed
        defaults: {model: imagen-4, count: 1}
        steps:
          shot:
            matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
            prompt: "product shot number {{ n }}"
        """
    )
    journal = tmp_path / "out" / ".run.jsonl"
    entries = tmp_path / "out" / ".manifest.jsonl"
    on_disk: list[set[str]] = []
    in_manifest: list[set[str]] = []

    def look(event: Event) -> None:  # runs after the recorder, which sinks come behind
        if isinstance(event, NodeDone):
            lines = journal.read_text().splitlines()
            on_disk.append({json.loads(line)[1] for line in lines if line.startswith('["node"')})
            made = entries.read_text().splitlines() if entries.exists() else []
            in_manifest.append({json.loads(line)["id"] for line in made})

    result = virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path, progress=look)
    assert result.exit_code == 0
    assert [len(nodes) for nodes in on_disk] == list(range(1, 9))  # each as it ended
    assert all(earlier <= later for earlier, later in itertools.pairwise(on_disk))
    # a node's manifest entry goes to disk as the node ends (just after its event)
    assert [len(nodes) for nodes in in_manifest] == list(range(8))
    assert all(made < ended for made, ended in zip(in_manifest, on_disk, strict=True))
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    assert set(run_json["nodes"]) == on_disk[-1] == set(result.nodes)
    assert run_json["timeline"]["inflight"]  # the timeline went through the journal too
    assert result.run_info == run_json
    assert not journal.exists() and not entries.exists()  # written out: the journals are gone
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [n["id"] for n in manifest["nodes"]] == list(result.nodes)  # in plan order


# -- a sink or a timer that raises (review A-1) ------------------------------------------


def test_a_progress_function_that_raises_is_logged_once_and_the_run_goes_on(
    write_recipe, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recipe = write_recipe(CHAIN)
    seen: list[Event] = []

    def progress(event: Event) -> None:
        seen.append(event)
        if isinstance(event, InflightChanged):
            raise RuntimeError("a display bug")

    caplog.set_level(logging.WARNING, logger="flowpipe.events")
    result = virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path, progress=progress)
    assert result.ok, result.message
    assert sum(isinstance(e, InflightChanged) for e in seen) > 2  # it kept getting events
    warnings = [r for r in caplog.records if r.name == "flowpipe.events"]
    assert len(warnings) == 1 and "a display bug" in caplog.text


def test_a_crash_in_a_dispatcher_ends_the_run_instead_of_hanging_it(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write_recipe(CHAIN)

    def broken(self: object, can_take: object) -> str | None:
        raise RuntimeError("dispatcher bug")

    monkeypatch.setattr(ReadyQueue, "pop_first", broken)
    with pytest.raises(RuntimeError, match="dispatcher bug"):
        virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["outcome"] == "failed"


def test_a_crash_in_a_retry_timer_ends_the_run_instead_of_hanging_it(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write_recipe(CHAIN)
    calls = 0
    push = Scheduler._push_if_ready

    def broken(self: Scheduler, nid: str) -> None:
        nonlocal calls
        calls += 1
        if self.states[nid].attempt.sent:  # a retry's timer, not a first push
            raise RuntimeError("timer bug")
        push(self, nid)

    monkeypatch.setattr(Scheduler, "_push_if_ready", broken)
    with pytest.raises(RuntimeError, match="timer bug"):
        virtual_run(recipe, FakeAPI(VirtualClock(), capacity=1), tmp_path, fixed_concurrency=4)


# -- answers that cannot be kept (review) ---------------------------------------

ONE = """
version: 1
name: one
steps:
  a:
    prompt: "a cat"
    count: 1
    seed: 1
"""


class _Answers(FakeAPI):
    """FakeAPI whose 200s carry other image bytes (``encode``), or no JSON at all."""

    encode: str = "JPEG"
    garbled: bool = False
    not_json: bool = False

    def _generated(self, path: str, email: str, body: dict[str, object]) -> HTTPResponse:
        if self.not_json:
            self.generations += 1
            return HTTPResponse(200, {"content-type": "application/json"}, b'{"imagePa')
        return super()._generated(path, email, body)

    def _image(self, email: str, body: dict[str, object], index: int) -> dict[str, object]:
        item = super()._image(email, body, index)
        buffer = io.BytesIO()
        Image.new("RGB", (16, 9), (1, 2, 3)).save(buffer, self.encode)
        data = b"\xff\xd8\xff" + b"\x00garbage" * 10 + b"\xff\xd9" if self.garbled \
            else buffer.getvalue()
        return {**item, "encodedImage": base64.b64encode(data).decode()}


def test_a_200_that_cannot_be_read_is_bought_again_once_not_ten_times(
    write_recipe, tmp_path: Path
) -> None:
    api = _Answers(VirtualClock())
    api.not_json = True
    result = virtual_run(write_recipe(ONE), api, tmp_path)
    assert api.images_requests == 2  # one retry: each 200 was billed
    assert result.nodes["a"].state == "failed"
    assert "malformed response" in (result.nodes["a"].reason or "")


def test_a_png_in_a_2025_11_answer_is_kept_as_png(write_recipe, tmp_path: Path) -> None:
    api = _Answers(VirtualClock())
    api.encode = "PNG"
    result = virtual_run(write_recipe(ONE), api, tmp_path)
    assert result.ok, result.message
    assert api.images_requests == 1
    assert [p.name for p in result.images] == ["0.png"]


def test_a_garbled_image_is_a_bad_answer_not_a_crash(write_recipe, tmp_path: Path) -> None:
    api = _Answers(VirtualClock())
    api.garbled = True
    result = virtual_run(write_recipe(ONE), api, tmp_path)
    assert result.exit_code == 1 and result.nodes["a"].state == "failed"
    assert "not a readable" in (result.nodes["a"].reason or "")
    assert api.images_requests == 2


@pytest.mark.parametrize(
    ("options", "expect"),
    [
        pytest.param({"fixed_concurrency": 0}, "must be at least 1", id="fixed-0"),
        pytest.param({"max_concurrency": 0}, "must be at least 1", id="max-0"),
        pytest.param({"time_scale": -1.0}, "must be more than 0", id="scale-negative"),
        pytest.param({"time_scale": 0.0}, "must be more than 0", id="scale-0"),
        pytest.param({"time_scale": float("nan")}, "must be more than 0", id="scale-nan"),
        pytest.param({"stop_grace": -1.0}, "must be 0 or more", id="grace-negative"),
    ],
)
def test_bad_numbers_are_usage_errors_naming_the_option(
    write_recipe, tmp_path: Path, options: dict[str, object], expect: str
) -> None:
    api = FakeAPI(VirtualClock())
    with pytest.raises(UsageError, match=expect) as caught:
        virtual_run(write_recipe(ONE), api, tmp_path, **options)
    assert caught.value.option == next(iter(options))
    assert api.requests == [] and not (tmp_path / "out").exists()


TWINS = """
version: 1
name: twins
steps:
  a:
    prompt: "a cat"
    count: 1
    seed: 5
  b:
    prompt: "a cat"
    count: 1
    seed: 5
"""


@pytest.mark.parametrize("use_cache", [False, True], ids=["no-cache", "cache-folder"])
def test_two_nodes_of_one_run_with_the_same_key_pay_once(
    write_recipe, tmp_path: Path, use_cache: bool
) -> None:
    api = FakeAPI(VirtualClock())
    result = virtual_run(write_recipe(TWINS), api, tmp_path, use_cache=use_cache)
    assert result.ok, result.message
    assert result.nodes["a"].key == result.nodes["b"].key
    assert api.images_requests == 1
    assert result.summary["waited_for_other_runs"] == 0  # it waited for itself
    assert sorted(n.cache_hit for n in result.nodes.values()) == [False, True]


# -- a claim covers the billed request only (review A-11) ----------------------------------

UPLOAD_TIME = 300.0  # API seconds one slow upload takes


class _SlowUploads(FakeAPI):
    """FakeAPI whose uploads take ``UPLOAD_TIME``; records when each started."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.upload_starts: list[float] = []

    async def __call__(self, request: HTTPRequest) -> HTTPResponse:
        if "/assets/" in request.url:
            self.upload_starts.append(self.clock.time())
            await self.clock.sleep(UPLOAD_TIME)
        return await super().__call__(request)


def test_uploads_go_up_together_before_the_claim_that_covers_the_request(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = _logo_recipe(write_recipe, tmp_path, steps="""\
  both:
    context: [assets.logo, assets.mark]
    prompt: "a badge with both marks"
""")
    api = _SlowUploads(VirtualClock(), latency=(10.0, 10.0))
    claimed: list[float] = []
    claim = KeyClaims.try_claim

    def spy(self: KeyClaims, key: str) -> bool:
        claimed.append(api.clock.time())
        return claim(self, key)

    monkeypatch.setattr(KeyClaims, "try_claim", spy)
    result = virtual_run(recipe, api, tmp_path)
    assert result.ok, result.message
    assert api.upload_starts == [0.0, 0.0]  # together, not one after the other
    assert claimed == [UPLOAD_TIME]  # the claim waited for the uploads: it covers the request


def test_a_claim_outlives_the_longest_request_it_covers() -> None:
    """Generation with its signed-URL reads (every image at once), or an upscale: a
    lease that ran out under a request would let another process send it again."""
    timeouts, fetch = Timeouts(), FetchPolicy()
    reads = fetch.attempts * timeouts.fetch + (fetch.attempts - 1) * fetch.delay[1]
    longest = max(timeouts.generate + reads, timeouts.upscale)
    assert longest < LEASE_SECONDS and longest < STALE_AFTER


def test_files_of_nodes_the_cache_answers_during_a_run_are_written_off_its_loop(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hero is made again with the same bytes, so every node below it is a cache hit found
    while requests may be in flight: its files (provenance, fsync) go to a thread, as a
    made node's do (review A-21)."""
    recipe = write_recipe(CHAIN)
    assert virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path).ok
    on_loop: list[str] = []
    write = OutputLedger.write_images

    def watched(self: OutputLedger, node: Any, gen: Any, blobs: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            on_loop.append(node.id)
        write(self, node, gen, blobs)

    monkeypatch.setattr(OutputLedger, "write_images", watched)
    again = virtual_run(recipe, FakeAPI(VirtualClock()), tmp_path, refresh_steps={"hero"})
    assert again.ok, again.message
    assert [n for n, r in again.nodes.items() if not r.cache_hit] == ["hero"]
    assert on_loop == []
    assert all(p.is_file() for p in again.images)
    # their manifest entries waited for the files: each names its file's own hash
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    files = [(tmp_path / "out" / img["path"], img["file_sha256"])
             for node in manifest["nodes"] for img in node["images"]]
    assert len(files) == len(again.images)
    assert all(hashlib.sha256(path.read_bytes()).hexdigest() == sha for path, sha in files)


def test_a_slot_that_sent_nothing_goes_back_to_the_limiter_unused(
    write_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin that waits for the other's request took a slot and sent nothing: it proves
    no window (review A-22)."""
    outcomes: list[Outcome] = []
    release = AdaptiveLimiter.release

    def watched(self: AdaptiveLimiter, permit: Any, outcome: Outcome, **kw: Any) -> None:
        outcomes.append(outcome)
        release(self, permit, outcome, **kw)

    monkeypatch.setattr(AdaptiveLimiter, "release", watched)
    result = virtual_run(write_recipe(TWINS), FakeAPI(VirtualClock()), tmp_path)
    assert result.ok, result.message
    assert outcomes.count(Outcome.OK) == 1
    assert set(outcomes) == {Outcome.OK, Outcome.UNUSED}
