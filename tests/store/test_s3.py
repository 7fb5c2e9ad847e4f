"""The obstore adapter against a real S3-compatible server (moto, loopback HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowpipe.errors import RemoteError, UsageError
from flowpipe.store.s3 import Bucket, parse_remote


def test_parse_remote_splits_bucket_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    spec = parse_remote("s3://team-assets/flowpipe/cache/")
    assert (spec.bucket, spec.prefix, spec.endpoint, spec.region) == (
        "team-assets", "flowpipe/cache", None, None)
    assert spec.url == "s3://team-assets/flowpipe/cache"
    assert parse_remote("s3://team-assets").url == "s3://team-assets"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://team-assets/x", id="not-s3"),
        pytest.param("s3:///x", id="no-bucket"),
        pytest.param("s3://Team_Assets/x", id="bad-bucket-name"),
        pytest.param("s3://key:secret@team-assets/x", id="credentials-in-url"),
        pytest.param("s3://team-assets/a/../b", id="dot-dot"),
        pytest.param("s3://team-assets/x?versionId=1", id="query"),
    ],
)
def test_parse_remote_refuses_what_is_not_a_bucket_prefix(url: str) -> None:
    with pytest.raises(UsageError, match="remote"):
        parse_remote(url)


def test_endpoint_from_the_environment_wins_in_the_standard_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert parse_remote("s3://bkt/x", endpoint="http://cfg:1").endpoint == "http://cfg:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://general:2")
    assert parse_remote("s3://bkt/x", endpoint="http://cfg:1").endpoint == "http://general:2"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:3")
    assert parse_remote("s3://bkt/x", endpoint="http://cfg:1").endpoint == "http://s3-only:3"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "ftp://nope")
    with pytest.raises(UsageError, match="not an http"):
        parse_remote("s3://bkt/x")


def _bucket(remote_url: str) -> Bucket:
    return Bucket(parse_remote(remote_url))


def test_create_is_conditional_and_replace_needs_the_version_read(remote_url: str) -> None:
    async def scenario() -> list[Any]:
        bucket = _bucket(remote_url)
        first = await bucket.create("v1/claims/k", b"one")
        second = await bucket.create("v1/claims/k", b"two")  # If-None-Match: * refuses
        blob = await bucket.get("v1/claims/k")
        assert blob is not None
        stale = blob.etag
        swapped = await bucket.replace("v1/claims/k", b"three", stale)  # If-Match: ok
        again = await bucket.replace("v1/claims/k", b"four", stale)  # version moved on
        final = await bucket.get("v1/claims/k")
        missing = await bucket.get("v1/claims/nothing")
        await bucket.delete("v1/claims/k")
        await bucket.delete("v1/claims/k")  # deleting what is gone is fine
        return [first, second, blob.data, swapped, again, final.data if final else None,
                missing, await bucket.names("v1/claims")]

    assert asyncio.run(scenario()) == [True, False, b"one", True, False, b"three", None, set()]


def test_names_lists_below_a_folder_only(remote_url: str) -> None:
    async def scenario() -> set[str]:
        bucket = _bucket(remote_url)
        for path in ("v1/gen/a", "v1/gen/b", "v1/img/c", "v1/genx/d"):
            await bucket.create(path, b"x")
        return await bucket.names("v1/gen")

    assert asyncio.run(scenario()) == {"a", "b"}


def test_a_server_that_is_gone_is_a_remote_error_naming_the_object(
    monkeypatch: pytest.MonkeyPatch, own_s3: Any
) -> None:
    server, endpoint = own_s3()
    server.stop()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    bucket = Bucket(parse_remote("s3://gone-bucket/p"), retries=0)
    with pytest.raises(RemoteError, match="cannot read s3://gone-bucket/p/v1/gen/k"):
        asyncio.run(bucket.get("v1/gen/k"))


def test_no_credentials_anywhere_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(RemoteError, match="no AWS credentials"):
        Bucket(parse_remote("s3://bkt/p"))


def test_a_profile_is_read_through_the_aws_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, new_bucket: Any, s3_secret: str
) -> None:
    name = new_bucket()
    creds = tmp_path / "credentials"
    creds.write_text(f"[team]\naws_access_key_id = moto-access-key\n"
                     f"aws_secret_access_key = {s3_secret}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "team")
    bucket = Bucket(parse_remote(f"s3://{name}/p"))
    assert asyncio.run(bucket.create("v1/img/x", b"bytes")) is True


def test_a_profile_that_does_not_exist_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    with pytest.raises(RemoteError, match=r"AWS credentials for the remote cache: .*nobody"):
        Bucket(parse_remote("s3://bkt/p"))
