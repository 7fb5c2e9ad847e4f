"""One prefix of an S3-compatible bucket, through obstore: the only module that talks S3.

obstore (Rust's ``object_store`` with Python bindings) signs requests, retries and keeps
connections; flowpipe never builds a request by hand. It has native async calls, sends
``If-None-Match: *`` for a create and ``If-Match`` for a replace, takes any endpoint
(MinIO, R2, moto), and costs little CPU per request (docs/architecture.md says why it
was chosen). Every call here is async and runs on the remote's own event loop
(``flowpipe.store.remote``); failures become ``RemoteError``.

Credentials come only from the standard AWS chain: obstore reads ``AWS_ACCESS_KEY_ID``
/ ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, web identity and container
credentials itself; otherwise boto3's session (profiles, SSO, instance roles) is asked.
Nothing about them is ever written or printed.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flowpipe import __version__
from flowpipe.errors import RemoteError, UsageError

if TYPE_CHECKING:
    from obstore.store import S3Store

__all__ = ["Blob", "Bucket", "RemoteSpec", "parse_remote"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_ENV_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@dataclass(frozen=True, slots=True)
class RemoteSpec:
    """Where the remote is: ``s3://BUCKET/PREFIX`` plus an optional endpoint and region."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_remote(url: str, *, endpoint: str | None = None, region: str | None = None) -> RemoteSpec:
    """Check ``s3://BUCKET/PREFIX``; the endpoint from the environment wins over ``endpoint``."""
    parts = urlsplit(url.strip())
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(
            f"remote '{url}' is not an s3:// URL",
            hint="write it as s3://BUCKET/PREFIX (the endpoint goes in AWS_ENDPOINT_URL_S3)",
        )
    if "@" in parts.netloc or not _BUCKET.match(parts.netloc):
        raise UsageError(f"remote '{url}': '{parts.netloc}' is not a bucket name")
    segments = [s for s in parts.path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise UsageError(f"remote '{url}': the prefix may not contain '.' or '..'")
    endpoint = (
        os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or endpoint
    )
    if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        raise UsageError(f"remote endpoint '{endpoint}' is not an http(s) URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or region
    return RemoteSpec(parts.netloc, "/".join(segments), endpoint or None, region or None)


@dataclass(frozen=True, slots=True)
class Blob:
    """An object's bytes and the version that came with them."""

    data: bytes
    etag: str | None
    modified: datetime


def _credential_provider() -> Any:
    """boto3's chain when the environment names no credentials obstore reads itself."""
    if any(os.environ.get(name) for name in _ENV_CREDENTIALS):
        return None
    try:
        import boto3
        from obstore.auth.boto3 import Boto3CredentialProvider
    except ImportError:  # obstore alone: instance metadata is its last resort
        return None
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session()
        found = session.get_credentials()
    except BotoCoreError as exc:  # a profile that does not exist, a broken config file
        raise RemoteError(f"AWS credentials for the remote cache: {exc}") from exc
    if found is None:
        raise RemoteError(
            "no AWS credentials for the remote cache",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
        )
    return Boto3CredentialProvider(session)


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """obstore's errors (and the OS's) as one RemoteError naming the object."""
    from obstore.exceptions import BaseError

    try:
        yield
    except (BaseError, OSError, TimeoutError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RemoteError(f"{what}: {first[:300]}") from exc


class Bucket:
    """Get, put, conditional create and replace, delete and list under one prefix.

    Paths are relative to the prefix. Absent objects are ``None`` or ``False``, never
    an exception; everything else that goes wrong is a ``RemoteError``.
    """

    def __init__(self, spec: RemoteSpec, *, connect_timeout: float = 3.0,
                 timeout: float = 30.0, retries: int = 2) -> None:
        from obstore.store import S3Store

        self.spec = spec
        provider = _credential_provider()
        profile_region = getattr(provider, "config", {}).get("region")  # an AWS profile's
        config: dict[str, Any] = {"region": spec.region or profile_region or "us-east-1"}
        if spec.endpoint:
            config["endpoint"] = spec.endpoint
        client = {
            "allow_http": bool(spec.endpoint and spec.endpoint.startswith("http://")),
            "connect_timeout": timedelta(seconds=connect_timeout),
            "timeout": timedelta(seconds=timeout),
            "user_agent": f"flowpipe/{__version__}",
        }
        retry: Any = {"max_retries": retries, "retry_timeout": timedelta(seconds=timeout)}
        with _mapped(f"cannot open remote {spec.url}"):
            self._store: S3Store = S3Store(
                spec.bucket,
                prefix=spec.prefix or None,
                config=config,  # type: ignore[arg-type]  # keys checked by obstore
                client_options=client,  # type: ignore[arg-type]
                retry_config=retry,
                credential_provider=provider,
            )

    def url(self, path: str) -> str:
        return f"{self.spec.url.rstrip('/')}/{path}"

    async def get(self, path: str) -> Blob | None:
        import obstore

        with _mapped(f"cannot read {self.url(path)}"):
            try:
                result = await obstore.get_async(self._store, path)
            except FileNotFoundError:
                return None
            data = bytes(await result.bytes_async())
            meta = result.meta
            return Blob(data, meta.get("e_tag"), meta["last_modified"])

    async def create(self, path: str, data: bytes) -> bool:
        """Write ``path`` only if it does not exist (``If-None-Match: *``)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        with _mapped(f"cannot write {self.url(path)}"):
            try:
                await obstore.put_async(self._store, path, data, mode="create")
            except (AlreadyExistsError, PreconditionError):
                return False
            return True

    async def put(self, path: str, data: bytes) -> None:
        """Write ``path`` whatever is there."""
        import obstore

        with _mapped(f"cannot write {self.url(path)}"):
            await obstore.put_async(self._store, path, data, mode="overwrite")

    async def replace(self, path: str, data: bytes, etag: str | None) -> bool:
        """Overwrite ``path`` only if it is still the version ``etag`` (``If-Match``)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        with _mapped(f"cannot write {self.url(path)}"):
            try:
                await obstore.put_async(self._store, path, data, mode={"e_tag": etag})
            except (AlreadyExistsError, PreconditionError, FileNotFoundError):
                return False
            return True

    async def delete(self, path: str) -> None:
        import obstore

        with _mapped(f"cannot delete {self.url(path)}"), contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self._store, path)

    async def names(self, prefix: str) -> set[str]:
        """Names (relative to ``prefix``) of every object under ``prefix``."""
        import obstore

        head = prefix.strip("/") + "/"
        found: set[str] = set()
        with _mapped(f"cannot list {self.url(head)}"):
            async for chunk in obstore.list(self._store, head, chunk_size=1000):
                found.update(m["path"][len(head):] for m in chunk if m["path"].startswith(head))
        return found
