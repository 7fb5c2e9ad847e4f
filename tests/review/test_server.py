"""The review server over HTTP: token, Host and Origin checks, what it serves and writes."""

from __future__ import annotations

import http.client
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flowpipe.errors import UsageError
from flowpipe.review import ReviewConfig, ReviewServer
from flowpipe.store.picks import read_picks, update_picks

from .conftest import Made


def _request(url: str, path: str, *, method: str = "GET", body: object = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    sent.update(headers or {})
    conn.request(method, path, body=data, headers=sent)
    response = conn.getresponse()
    status, payload = response.status, response.read()
    conn.close()
    return status, payload


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _files(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def served(made: Made):
    with ReviewServer(ReviewConfig.for_output(made.out)) as server:
        yield server


def test_it_listens_on_loopback_and_finds_the_recipe_from_run_json(made: Made, served) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    assert served.config.picks == made.recipe.with_name("demo.picks.yaml")
    token = served.config.token
    assert len(token) >= 32 and token in served.url
    status, page = _request(served.url, urlsplit(served.url).path)
    assert status == 200 and b"review mode" in page


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/", {}, id="no-token"),
        pytest.param("/wrong-token/", {}, id="wrong-token"),
        pytest.param("/{token}x/", {}, id="longer-token"),
        pytest.param("/{token}/", {"Host": "evil.example"}, id="foreign-host"),
        pytest.param("/{token}/", {"Host": "evil.example:{port}"}, id="rebound-host"),
        pytest.param("/{token}/api/picks", {"Origin": "http://evil.example"}, id="foreign-origin"),
        pytest.param("/{token}/api/picks", {"Origin": "null"}, id="null-origin"),
    ],
)
def test_requests_without_the_token_or_from_elsewhere_are_refused(
    served, path: str, headers: dict[str, str]
) -> None:
    port = str(urlsplit(served.url).port)
    fill = {k: v.replace("{port}", port) for k, v in headers.items()}
    status, body = _request(served.url, path.replace("{token}", served.config.token), headers=fill)
    assert status == 403
    assert served.config.token.encode() not in body


def test_writes_need_the_pages_origin_and_json(made: Made, served) -> None:
    path = urlsplit(served.url).path + "api/picks"
    pick = {"action": "pick", "node": "hero", "image": 1, "sha256": made.sha("hero", 1)}
    assert _request(served.url, path, method="POST", body=pick)[0] == 403  # no Origin
    status, _ = _request(served.url, path, method="POST", body=pick,
                         headers={"Origin": _origin(served.url), "Content-Type": "text/plain"})
    assert status == 403
    assert not served.config.picks.exists()
    status, body = _request(served.url, path, method="POST", body=pick,
                            headers={"Origin": _origin(served.url)})
    assert status == 200, body
    hero = read_picks(served.config.picks).get("hero")
    assert hero is not None and (hero.image, hero.sha256) == (1, made.sha("hero", 1))


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"action": "pick", "node": "nope", "image": 0, "sha256": "a" * 64}, 400,
                     id="unknown-node"),
        pytest.param({"action": "pick", "node": "hero", "image": 3}, 400, id="no-such-image"),
        pytest.param({"action": "pick", "node": "hero", "image": True}, 400, id="bool-index"),
        pytest.param({"action": "pick", "node": "hero", "image": 0, "sha256": "a" * 64}, 409,
                     id="re-made"),
        pytest.param({"action": "rm", "node": "hero"}, 400, id="unknown-action"),
        pytest.param({"action": "note", "node": "hero", "note": "x" * 2001}, 400,
                     id="long-note"),
        pytest.param(["pick"], 400, id="not-an-object"),
        pytest.param(b"{", 400, id="not-json"),
        pytest.param(b"[" * 30_000 + b"]" * 30_000, 400, id="nested-too-deep"),
    ],
)
def test_bad_changes_are_refused_and_write_nothing(served, body: object, status: int) -> None:
    path = urlsplit(served.url).path + "api/picks"
    got, answer = _request(served.url, path, method="POST", body=body,
                           headers={"Origin": _origin(served.url)})
    assert got == status
    assert json.loads(answer)["error"]  # a reason, not a bare server error
    assert not served.config.picks.exists()


@pytest.mark.parametrize("path", [
    "hero/default/0.jpg", ".thumbs/../hero/default/0.jpg", "../demo.yaml", "manifest.json",
    "run.json", "%2e%2e/demo.yaml", "hero/default/../../../demo.picks.yaml",
])
def test_it_serves_image_files_of_the_folder_and_nothing_else(made: Made, served,
                                                              path: str) -> None:
    made.recipe.with_name("demo.picks.yaml").write_text("secret: {note: x}\n")
    status, body = _request(served.url, urlsplit(served.url).path + path)
    if path == "hero/default/0.jpg":
        assert status == 200 and body == (made.out / path).read_bytes()
    else:
        assert status == 404 or status == 403
        assert b"secret" not in body


def test_it_writes_only_the_picks_file(made: Made, served) -> None:
    before = _files(made.recipe.parent)
    base = urlsplit(served.url).path
    origin = {"Origin": _origin(served.url)}
    _request(served.url, base)
    for body in ({"action": "pick", "node": "hero", "image": 0, "sha256": made.sha("hero", 0)},
                 {"action": "note", "node": "hero", "note": "warm"},
                 {"action": "reject", "node": "hero", "image": 2, "sha256": made.sha("hero", 2)}):
        assert _request(served.url, base + "api/picks", method="POST", body=body,
                        headers=origin)[0] == 200
    after = _files(made.recipe.parent)
    changed = {p for p in after if before.get(p) != after[p]}
    assert changed == {str(served.config.picks)}


def test_two_tabs_writing_at_once_lose_nothing_and_keep_the_file_valid(made: Made,
                                                                      served) -> None:
    base = urlsplit(served.url).path + "api/picks"
    origin = {"Origin": _origin(served.url)}
    bodies = [{"action": "pick", "node": "hero", "image": 1, "sha256": made.sha("hero", 1)}]
    bodies += [{"action": "note", "node": n.id, "note": f"note {i}"}
               for i, n in enumerate(made.manifest.nodes)]
    bodies += [{"action": "reject", "node": "side[angle=front]", "image": i,
                "sha256": made.sha("side[angle=front]", i)} for i in range(2)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(
            lambda b: _request(served.url, base, method="POST", body=b, headers=origin)[0],
            bodies * 3))
    assert set(statuses) == {200}
    picks = read_picks(served.config.picks)  # parses: the file stayed valid
    assert set(picks.entries) == {n.id for n in made.manifest.nodes}
    hero, side = picks.get("hero"), picks.get("side[angle=front]")
    assert hero is not None and hero.image == 1
    assert side is not None and sorted(side.rejected) == [0, 1]


def test_without_run_json_the_recipe_must_be_named(made: Made) -> None:
    os.remove(made.out / "run.json")
    with pytest.raises(UsageError) as caught:
        ReviewConfig.for_output(made.out)
    assert caught.value.option == "recipe"
    config = ReviewConfig.for_output(made.out, made.recipe)
    assert config.picks == made.recipe.with_name("demo.picks.yaml")


def test_a_named_recipe_gives_the_page_its_picks(made: Made) -> None:
    """``--recipe`` for a folder whose run.json names no recipe: the page shows the picks
    of the file the server writes, not "run.json does not say where the recipe is"."""
    os.remove(made.out / "run.json")
    update_picks(made.recipe.with_name("demo.picks.yaml"),
                 lambda p: p.pick("hero", 2, made.sha("hero", 2)))
    with ReviewServer(ReviewConfig.for_output(made.out, made.recipe)) as server:
        status, page = _request(server.url, urlsplit(server.url).path)
    assert status == 200
    assert b"does not say where the recipe is" not in page
    data = page.split(b'<script type="application/json" id="fp-data">')[1].split(b"</script>")[0]
    assert json.loads(data)["picks"]["hero"]["image"] == 2


def test_a_recipe_run_json_names_outside_the_current_folder_must_be_named(
    made: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A downloaded output folder cannot choose where picks are written: a recipe outside
    the folder flowpipe runs in, by a relative or an absolute path, needs --recipe."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(UsageError) as caught:
        ReviewConfig.for_output(made.out)
    assert caught.value.option == "recipe" and "outside the current folder" in str(caught.value)
    run = json.loads((made.out / "run.json").read_text())
    run["recipe"]["file"] = str(tmp_path / "made" / "demo.yaml")  # absolute
    (made.out / "run.json").write_text(json.dumps(run))
    with pytest.raises(UsageError):
        ReviewConfig.for_output(made.out)
    assert ReviewConfig.for_output(made.out, made.recipe).picks == made.recipe.with_name(
        "demo.picks.yaml")
    monkeypatch.chdir(tmp_path)  # a folder that holds the recipe: run.json is enough
    assert ReviewConfig.for_output(made.out).recipe == made.recipe
