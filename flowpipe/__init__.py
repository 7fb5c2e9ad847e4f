"""flowpipe: version-controlled YAML recipes into image sets from the Google Flow API.

The front door (docs/python.md)::

    import flowpipe
    result = flowpipe.run("examples/campaign.yaml", out="out/campaign")
    print(result.ok, len(result.images))

``load``, ``plan``, ``run`` and ``await run_async`` take a path (str or Path) or a
loaded ``Recipe``. Everything else lives in documented subpackages
(docs/architecture.md): ``flowpipe.events`` for progress, ``flowpipe.engine``,
``flowpipe.api``, ``flowpipe.store``, ``flowpipe.report``, ``flowpipe.sim``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowpipe._front import load, plan, run, run_async
from flowpipe.errors import (
    AccountNotFoundError,
    AccountPausedError,
    APIError,
    AssetError,
    AuthError,
    CacheEntryError,
    CacheError,
    CacheIndexError,
    CapacityError,
    CaptchaError,
    ErrorInfo,
    FlowpipeError,
    ForbiddenReferenceError,
    FrozenCacheMissError,
    ImageURLError,
    InvalidRequestError,
    Location,
    ModelQuotaError,
    ModerationError,
    NoEligibleAccountError,
    OutputError,
    PaymentRequiredError,
    PicksError,
    PlanError,
    QuotaError,
    QuotaStopError,
    RecipeError,
    RecipeErrors,
    RecipeSyntaxError,
    ReferenceError_,
    RemoteError,
    ResponseError,
    SchemaError,
    SessionError,
    StopRunError,
    TemplateError,
    TransportError,
    UnexpectedStatusError,
    UsageError,
)
from flowpipe.results import NodeResult, RunResult

if TYPE_CHECKING:
    from flowpipe._front import Progress
    from flowpipe.planner import Plan, Recipe

__version__ = "0.1.0"

__all__ = [  # noqa: RUF022  tests/test_package.py keeps dunders last, after the functions
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
    "NodeResult",
    "OutputError",
    "PaymentRequiredError",
    "PicksError",
    "Plan",
    "PlanError",
    "Progress",
    "QuotaError",
    "QuotaStopError",
    "Recipe",
    "RecipeError",
    "RecipeErrors",
    "RecipeSyntaxError",
    "ReferenceError_",
    "RemoteError",
    "ResponseError",
    "RunResult",
    "SchemaError",
    "SessionError",
    "StopRunError",
    "TemplateError",
    "TransportError",
    "UnexpectedStatusError",
    "UsageError",
    "load",
    "plan",
    "run",
    "run_async",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """``Plan`` and ``Recipe`` load the recipe language on first use, not on import, and
    ``Progress`` the run's events: `flowpipe --help` needs none of them."""
    if name in ("Plan", "Recipe"):
        from flowpipe import planner

        return getattr(planner, name)
    if name == "Progress":
        from flowpipe import _front

        return _front.Progress
    raise AttributeError(f"module 'flowpipe' has no attribute {name!r}")
