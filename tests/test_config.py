"""The project config file: found upward, two forms of remote:, clear errors, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowpipe.config import CONFIG_NAME, find_config, load_config
from flowpipe.errors import UsageError
from flowpipe.store.remote import resolve_remote


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FLOWPIPE_REMOTE", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION",
                 "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "recipes" / "deep").mkdir(parents=True)
    return tmp_path


def test_the_nearest_file_upward_is_used(project: Path) -> None:
    (project / CONFIG_NAME).write_text("remote: s3://outer-bucket/x\n")
    assert find_config(project / "recipes" / "deep") == project / CONFIG_NAME
    (project / "recipes" / CONFIG_NAME).write_text("remote: s3://inner-bucket/y\n")
    config = load_config(project / "recipes" / "deep")
    assert (config.path, config.remote) == (project / "recipes" / CONFIG_NAME,
                                            "s3://inner-bucket/y")


def test_no_file_means_no_remote(project: Path) -> None:
    assert load_config(project / "recipes").remote is None
    assert resolve_remote(None, start=project / "recipes") is None


def test_the_long_form_carries_endpoint_and_region(project: Path) -> None:
    (project / CONFIG_NAME).write_text(
        "remote:\n  url: s3://team-assets/flowpipe\n"
        "  endpoint: https://acct.r2.cloudflarestorage.com\n  region: auto\n"
    )
    spec = resolve_remote(None, start=project)
    assert spec is not None
    assert (spec.bucket, spec.prefix, spec.endpoint, spec.region) == (
        "team-assets", "flowpipe", "https://acct.r2.cloudflarestorage.com", "auto")


def test_flag_beats_environment_beats_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / CONFIG_NAME).write_text("remote: s3://from-file/x\n")
    assert resolve_remote(None, start=project).bucket == "from-file"  # type: ignore[union-attr]
    monkeypatch.setenv("FLOWPIPE_REMOTE", "s3://from-env/x")
    assert resolve_remote(None, start=project).bucket == "from-env"  # type: ignore[union-attr]
    spec = resolve_remote("s3://from-flag/x", start=project)
    assert spec is not None and spec.bucket == "from-flag"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("remote: [1, 2]\n", rf"{CONFIG_NAME}:1:9: expected a mapping", id="list"),
        pytest.param("remtoe: s3://b-b/x\n", rf"{CONFIG_NAME}:1:1: unknown key 'remtoe'",
                     id="typo"),
        pytest.param("remote:\n  endpoint: http://x\n", rf"{CONFIG_NAME}:2:3: remote needs a url",
                     id="no-url"),
        pytest.param("remote:\n  url: s3://b-b/x\n  aws_secret_access_key: abc\n",
                     rf"{CONFIG_NAME}:3:3: 'aws_secret_access_key': credentials never go",
                     id="secret"),
        pytest.param("remote: 's3://b-b/x\n", rf"{CONFIG_NAME}:2:1: ", id="bad-yaml"),
        pytest.param("- remote\n", rf"{CONFIG_NAME}:1:1: expected a mapping", id="top-list"),
        pytest.param("remote: ''\n", rf"{CONFIG_NAME}:1:9: remote must be a non-empty",
                     id="empty"),
    ],
)
def test_bad_files_are_usage_errors_with_a_position(project: Path, text: str,
                                                    message: str) -> None:
    (project / CONFIG_NAME).write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        load_config(project)
    assert "abc" not in str(info.value)  # a secret written there is not echoed back
