"""One exception tree for everything flowpipe raises on purpose.

Callers catch ``FlowpipeError``; the CLI turns any of these into one line on stderr
and the exit code ``flowpipe.exitcodes`` maps it to (shown here). Lower-level errors
(yaml, jsonschema, jinja2, aiohttp) are mapped to these where they are first met,
never let through. Messages say what is wrong in the library's terms; an error about
one run option names it in ``option`` and the CLI adds which flag that is.

    FlowpipeError                      exit 1
    ├── UsageError                     exit 2  an option or a call that cannot work
    ├── RecipeError                    exit 2  file:line:col: what is wrong
    │   ├── RecipeSyntaxError                  YAML syntax, duplicate keys
    │   ├── SchemaError                        JSON Schema violations
    │   ├── TemplateError                      Jinja: undefined names, sandbox escapes
    │   ├── ReferenceError_                    STEP.N / assets.NAME that do not resolve
    │   ├── AssetError                         missing, unsafe or unsupported asset files
    │   └── PlanError                          cycles and per-model rules
    ├── RecipeErrors                   exit 2  several RecipeErrors reported at once
    ├── APIError                       exit 1  an answer from the API (or none at all)
    │   ├── InvalidRequestError        400 with a plain ``error`` string
    │   ├── ModerationError            400 PUBLIC_ERROR_UNSAFE_GENERATION, 500
    │   ├── ForbiddenReferenceError    403 reference owned by another account
    │   ├── AccountNotFoundError       404 account not configured
    │   ├── CapacityError              429 (no reason, or any in 2025-11), 503: retry after 5-10 s
    │   ├── QuotaError                 429 with a 2026-07 reason: a pause, not a capacity signal
    │   │   ├── AccountPausedError     USER_REQUESTS_THROTTLED, USER_QUOTA_REACHED: ~30 min
    │   │   ├── ModelQuotaError        PER_MODEL_DAILY_QUOTA_REACHED: until 00:00 UTC
    │   │   └── NoEligibleAccountError no_eligible_account: every account out; Retry-After
    │   ├── CaptchaError               403 ``captcha_quality:...``: retry a few times, then fail
    │   ├── ImageURLError              a fifeUrl expired, was refused or unreadable: re-make
    │   ├── TransportError             timeouts, resets, truncated bodies: retry like capacity
    │   ├── ResponseError              a 2xx body that is not what the page documents
    │   ├── UnexpectedStatusError      a status the page does not document
    │   └── StopRunError               exit 3  no new request may be sent
    │       ├── AuthError              401 bad token
    │       ├── PaymentRequiredError   402 no subscription or credits
    │       └── SessionError           596 cookies of the account need refreshing
    ├── CacheError                     exit 1  the cache folder cannot be used
    │   ├── CacheIndexError                    cache.db is damaged: repair or clear it
    │   ├── CacheEntryError                    one entry is damaged: it is re-made
    │   └── RemoteError                        the remote cache cannot be reached or used
    ├── OutputError                    exit 1  outputs cannot be written (disk full, ...)
    └── FrozenCacheMissError           exit 4  a frozen run and a node is not cached

``ErrorInfo`` is the plain record of an error that a run keeps per node (events,
manifest.json, ``NodeResult.error``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "APIError",
    "AccountNotFoundError",
    "AccountPausedError",
    "AssetError",
    "AuthError",
    "CacheEntryError",
    "CacheError",
    "CacheIndexError",
    "CapacityError",
    "CaptchaError",
    "ErrorInfo",
    "FlowpipeError",
    "ForbiddenReferenceError",
    "FrozenCacheMissError",
    "ImageURLError",
    "InvalidRequestError",
    "Location",
    "ModelQuotaError",
    "ModerationError",
    "NoEligibleAccountError",
    "OutputError",
    "PaymentRequiredError",
    "PlanError",
    "QuotaError",
    "RecipeError",
    "RecipeErrors",
    "RecipeSyntaxError",
    "ReferenceError_",
    "RemoteError",
    "ResponseError",
    "SchemaError",
    "SessionError",
    "StopRunError",
    "TemplateError",
    "TransportError",
    "UnexpectedStatusError",
    "UsageError",
]

class FlowpipeError(Exception):
    """Base of every error flowpipe raises on purpose.

    ``option`` names the run option the error is about (``frozen``, ``refresh_steps``,
    ...), so a face such as the CLI can say which of its flags that is.
    """

    def __init__(self, message: str, *, hint: str | None = None, option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.option = option

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(FlowpipeError):
    """The caller asked for something that cannot be done."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where in a recipe file something was written (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class RecipeError(FlowpipeError):
    """A recipe is wrong; the message names the place and what to do."""

    def __init__(
        self, message: str, location: Location | None = None, *, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.location = location

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.location}: {text}" if self.location else text


class RecipeSyntaxError(RecipeError):
    """YAML that does not parse, or a mapping with a key twice."""


class SchemaError(RecipeError):
    """The recipe breaks its JSON Schema."""


class TemplateError(RecipeError):
    """A Jinja template fails: an undefined name, bad syntax or a sandbox escape."""


class ReferenceError_(RecipeError):  # trailing _: the builtin ReferenceError is unrelated
    """A ``style``/``context`` reference names no image the plan will have."""


class AssetError(RecipeError):
    """An asset file is missing, too large, not PNG/JPEG or outside the recipe folder."""


class PlanError(RecipeError):
    """The steps cannot be ordered or break a per-model rule of the API."""


class RecipeErrors(FlowpipeError):
    """Several recipe problems found in one pass, reported together."""

    def __init__(self, errors: list[RecipeError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class APIError(FlowpipeError):
    """The API answered with an error, or could not be reached.

    ``status`` is the HTTP status (None when no answer came), ``reason`` the API's own
    error text or reason code, ``request`` a short, token-free summary of the request.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        hint: str | None = None,
        request: str | None = None,
        body: Any = None,
        option: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, option=option)
        self.status = status
        self.reason = reason
        self.request = request
        self.body = body

    def __str__(self) -> str:
        parts = [f"HTTP {self.status}" if self.status is not None else "no response"]
        if self.request:
            parts.append(self.request)
        parts.append(self.message)
        text = ": ".join(parts)
        return f"{text} ({self.hint})" if self.hint else text


class InvalidRequestError(APIError):
    """400 with a plain error string: the request was malformed."""


class ModerationError(APIError):
    """400 PUBLIC_ERROR_UNSAFE_GENERATION or 500: retry, or switch model."""

    retryable = True


class ForbiddenReferenceError(APIError):
    """403: a mediaGenerationId belongs to another account."""


class AccountNotFoundError(APIError):
    """404: the account email is not configured at useapi.net."""


class CapacityError(APIError):
    """429 or 503: the API is at its concurrency limit; retry in 5-10 s."""

    retryable = True


class QuotaError(APIError):
    """429 with a reason the dialect reads as a pause (2026-07): not a capacity signal.

    ``pause`` is how many API seconds the ``scope`` (``account``, ``model`` or
    ``service``) stays out: the ``Retry-After`` answer where one came, else the
    dialect's figure (30 minutes for an account, the next 00:00 UTC by the answer's
    ``Date`` for a model). ``model`` is the model the request named, if any.
    """

    retryable = True
    scope: ClassVar[str] = "account"

    def __init__(
        self, message: str, *, pause: float, model: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.pause = pause
        self.model = model


class AccountPausedError(QuotaError):
    """USER_REQUESTS_THROTTLED or USER_QUOTA_REACHED: send nothing to this account for a while."""

    scope = "account"


class ModelQuotaError(QuotaError):
    """PER_MODEL_DAILY_QUOTA_REACHED: this model on this account is out until 00:00 UTC."""

    scope = "model"


class NoEligibleAccountError(QuotaError):
    """no_eligible_account: every account is out; wait ``pause`` (Retry-After) seconds."""

    scope = "service"


class CaptchaError(APIError):
    """403 whose error starts ``captcha_quality:``: the service's captcha was refused."""

    retryable = True


class ImageURLError(APIError):
    """A generated image's signed ``fifeUrl`` expired, was refused or could not be read.

    The generation itself succeeded but its bytes are gone: the node must be made again.
    """

    retryable = True


class TransportError(APIError):
    """No usable answer: timeout, reset, truncated body. Treated like capacity."""

    retryable = True


class ResponseError(APIError):
    """A success status whose body is not what the API page documents."""

    retryable = True


class UnexpectedStatusError(APIError):
    """A status the API page does not document."""


class StopRunError(APIError):
    """Nothing more may be sent: the token, the subscription or the session is bad."""


class AuthError(StopRunError):
    """401: the API token is wrong."""


class PaymentRequiredError(StopRunError):
    """402: no subscription, or no credits left."""


class SessionError(StopRunError):
    """596: the account's Google session could not be refreshed."""


class CacheError(FlowpipeError):
    """The cache folder cannot be opened, read or written."""


class CacheIndexError(CacheError):
    """The cache's SQLite index (cache.db) is damaged; the message names it and the fix."""


class CacheEntryError(CacheError):
    """One cache entry cannot be read as bytes (a pickle, a folder for a value file).

    ``ResponseCache`` reports it as a warning and treats the entry as a miss.
    """


class RemoteError(CacheError):
    """The remote cache (S3-compatible storage) is misconfigured or does not answer.

    During a run this becomes one warning and the run goes on with the local cache;
    ``flowpipe cache push`` and ``pull`` exit with it.
    """


class OutputError(FlowpipeError):
    """An output file cannot be written (disk full, permissions)."""


class FrozenCacheMissError(FlowpipeError):
    """A frozen run (no request may be sent) met a node the cache cannot answer."""



@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a node failed or was skipped, in a form JSON and people can read."""

    type: str
    message: str
    status: int | None = None
    reason: str | None = None
    hint: str | None = None

    @classmethod
    def of(cls, error: FlowpipeError) -> ErrorInfo:
        """The record of ``error``: API errors keep their status and reason."""
        if isinstance(error, APIError):
            return cls(type(error).__name__, error.message, error.status, error.reason, error.hint)
        return cls(type(error).__name__, error.message, hint=error.hint)

    def as_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "hint": self.hint,
        }
