"""The Flow API's dialects as data: one table per dialect, read by every part.

flowpipe speaks two versions of the useapi.net Google Flow image API: the page of
2025-11-17 (``../shared/api/google-flow-images.md``) and the service as it stands in
July 2026 (``google-flow-2026.md``). Everything that differs between them (models and
their aliases, aspect ratios, reference fields and limits, response shapes, what a 429
reason means, upscaling, captcha) lives in the two ``Dialect`` values below. The
recipe checks, the plan, the API client and the simulator all read them, and this
module imports none of those, so a change in the service is one edit here.

Field names, error texts and reason codes are the pages' own, word for word.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "CAPTCHA_REFUSED_PREFIX",
    "DEFAULT_DIALECT",
    "DIALECTS",
    "NO_ELIGIBLE_ACCOUNT",
    "PER_MODEL_DAILY_QUOTA_REACHED",
    "USER_QUOTA_REACHED",
    "USER_REQUESTS_THROTTLED",
    "Alias",
    "Dialect",
    "DialectName",
    "ImageFormat",
    "Model",
    "RateReason",
    "dialect",
    "dialects_accepting",
    "request_references",
    "same_ratio",
    "seconds_to_utc_midnight",
]

DialectName = Literal["2025-11", "2026-07"]
DEFAULT_DIALECT: DialectName = "2025-11"  # absent `api:` keeps every committed lock's keys

USER_REQUESTS_THROTTLED = "PUBLIC_ERROR_USER_REQUESTS_THROTTLED"
USER_QUOTA_REACHED = "PUBLIC_ERROR_USER_QUOTA_REACHED"
PER_MODEL_DAILY_QUOTA_REACHED = "PUBLIC_ERROR_PER_MODEL_DAILY_QUOTA_REACHED"
NO_ELIGIBLE_ACCOUNT = "no_eligible_account"
CAPTCHA_REFUSED_PREFIX = "captcha_quality:"

Scope = Literal["capacity", "account", "model", "service"]
ImageFormat = Literal["jpeg", "png"]


@dataclass(frozen=True, slots=True)
class Model:
    """One model as a dialect offers it.

    ``max_context`` counts references of the context kind (2026-07's only kind);
    ``fallback`` is the model a moderated step switches to unless it says otherwise;
    ``sizes`` are the native pixel sizes per aspect ratio (the simulator draws them);
    ``name_type`` is the ``modelNameType`` the API reports (with references: ``name_type_refs``).
    """

    name: str
    max_context: int
    takes_style: bool
    upscalable: bool
    fallback: str | None
    sizes: Mapping[str, tuple[int, int]]
    name_type: str
    name_type_refs: str | None = None


@dataclass(frozen=True, slots=True)
class Alias:
    """An old name (of a model or an aspect ratio) and what it stands for now.

    ``warning`` is what ``flowpipe validate`` says where a recipe writes the old name.
    """

    target: str
    warning: str


@dataclass(frozen=True, slots=True)
class RateReason:
    """What a 429 with this reason means: who is out, and for how long.

    ``scope``: ``capacity`` (retry in 5-10 s, tell the limiter), ``account`` (that
    account pauses), ``model`` (that model on that account pauses), ``service`` (every
    account is out). ``pause`` is API seconds when the answer gives no ``Retry-After``;
    ``until_utc_midnight`` means the pause ends at the next 00:00 UTC instead.
    """

    scope: Scope
    pause: float | None = None
    until_utc_midnight: bool = False
    meaning: str = ""


CAPACITY = RateReason("capacity", meaning="the API is at its concurrency limit")


def _sizes(
    landscape: tuple[int, int], square: int, portrait: tuple[int, int]
) -> Mapping[str, tuple[int, int]]:
    return MappingProxyType(
        {"landscape": landscape, "portrait": portrait, "square": (square, square)}
    )


_FLOW_2026_SIZES: Mapping[str, tuple[int, int]] = MappingProxyType({
    "16:9": (1376, 768), "4:3": (1200, 896), "1:1": (1024, 1024),
    "3:4": (896, 1200), "9:16": (768, 1376),
})


@dataclass(frozen=True, slots=True)
class Dialect:
    """Everything a dialect of the API decides, as data (see the module docstring)."""

    name: DialectName
    page: str
    models: Mapping[str, Model]  # canonical names, in the page's order
    aliases: Mapping[str, Alias]
    default_model: str  # what the API picks with no model and no context reference
    default_model_with_context: str  # ... and with context references
    aspect_ratios: tuple[str, ...]  # what the API takes, in the page's order
    default_aspect_ratio: str
    needs_reference: frozenset[str]  # ratios valid only with at least one reference
    ratio_aliases: Mapping[str, Alias]  # legacy names flowpipe rewrites before sending
    renamed: Mapping[str, str]  # old names this dialect refuses -> the name to write
    style_field: str | None  # the style reference's field, None: no style kind
    context_field: str  # ``{n}`` is the 1-based slot number
    reference_slots: int
    in_keys: bool  # whether cache keys name the dialect (2025-11's keys predate dialects)
    response_shape: Literal["imagePanels", "media"]
    image_formats: tuple[ImageFormat, ...]  # what the page says it sends (the sim sends these)
    upload_types: tuple[str, ...]
    upscale_resolutions: tuple[str, ...] = ()
    upscale_source_field: str | None = None  # the upscale body's field naming its image
    upscale_long_side: Mapping[str, int] = field(default_factory=dict)
    captcha_field: str | None = None
    captcha_range: tuple[int, int] = (1, 10)
    captcha_default: int = 3
    captcha_exclusive: tuple[str, ...] = ()  # fields of which a request may send one
    captcha_refused_prefix: str | None = None  # a 403 error starting so is a captcha refusal
    rate_reasons: Mapping[str, RateReason] = field(default_factory=dict)
    capacity_reason: str | None = None  # the reason code a plain capacity 429 carries
    email_required_with_many_accounts: bool = True

    # -- models ----------------------------------------------------------------------

    @property
    def model_names(self) -> tuple[str, ...]:
        """Every name a recipe may write: canonical models, then aliases."""
        return (*self.models, *self.aliases)

    def canonical_model(self, name: str) -> str | None:
        """The model ``name`` stands for in this dialect (itself, or an alias's model)."""
        if name in self.models:
            return name
        alias = self.aliases.get(name)
        return alias.target if alias else None

    def auto_model(self, context_count: int) -> str:
        """The model the API picks when the request names none."""
        return self.default_model_with_context if context_count else self.default_model

    # -- aspect ratios ---------------------------------------------------------------

    @property
    def ratio_names(self) -> tuple[str, ...]:
        """Every aspect ratio a recipe may write: the API's, then legacy aliases."""
        return (*self.aspect_ratios, *self.ratio_aliases)

    def canonical_ratio(self, name: str) -> str | None:
        """The ratio flowpipe sends for ``name``, or None when this dialect has no such ratio."""
        if name in self.aspect_ratios:
            return name
        alias = self.ratio_aliases.get(name)
        return alias.target if alias else None

    # -- request fields ----------------------------------------------------------------

    def reference_field(self, role: Literal["style", "context"], number: int) -> str:
        """The body field of reference ``number`` (1-based) of a role."""
        if role == "style":
            if self.style_field is None:
                raise ValueError(f"api {self.name} has no style reference")
            return self.style_field
        return self.context_field.format(n=number)

    @property
    def reference_fields(self) -> tuple[str, ...]:
        """Every request field that carries a reference, in the order a request lists
        them: the style's, the context slots 1..N, an upscale's source."""
        style = (self.style_field,) if self.style_field else ()
        context = tuple(self.context_field.format(n=n) for n in range(1, self.reference_slots + 1))
        source = (self.upscale_source_field,) if self.upscale_source_field else ()
        return (*style, *context, *source)

    # -- answers ---------------------------------------------------------------------------

    def rate_reason(self, codes: Iterable[str]) -> tuple[str | None, RateReason]:
        """The first code this dialect gives a meaning to, or capacity (``None``, CAPACITY)."""
        for code in codes:
            meaning = self.rate_reasons.get(code)
            if meaning is not None:
                return code, meaning
        return None, CAPACITY

    def is_captcha_refusal(self, error_text: str | None) -> bool:
        """True for a 403 whose plain ``error`` text marks a refused captcha."""
        prefix = self.captcha_refused_prefix
        return bool(prefix and error_text and error_text.startswith(prefix))


_IMAGEN_RETIRED = "imagen-4 now runs nano-banana-2-lite on Flow (Imagen was retired in July 2026)"

FLOW_2025_11 = Dialect(
    name="2025-11",
    page="google-flow-images.md (2025-11-17)",
    models=MappingProxyType({
        "imagen-4": Model(
            "imagen-4", max_context=3, takes_style=True, upscalable=False,
            fallback="nano-banana", sizes=_sizes((1408, 768), 1024, (768, 1408)),
            name_type="IMAGEN_3_5", name_type_refs="R2I",
        ),
        "nano-banana": Model(
            "nano-banana", max_context=4, takes_style=False, upscalable=False,
            fallback="imagen-4", sizes=_sizes((1344, 768), 1024, (768, 1344)),
            name_type="GEM_PIX",
        ),
    }),
    aliases=MappingProxyType({}),
    default_model="imagen-4",
    default_model_with_context="nano-banana",
    aspect_ratios=("landscape", "portrait", "square"),
    default_aspect_ratio="landscape",
    needs_reference=frozenset(),
    ratio_aliases=MappingProxyType({}),
    renamed=MappingProxyType({}),
    style_field="styleReference_1",
    context_field="contextReference_{n}",
    reference_slots=4,
    in_keys=False,
    response_shape="imagePanels",
    image_formats=("jpeg",),
    upload_types=("image/png", "image/jpeg"),
    # The page's own capacity 429 carries PUBLIC_ERROR_USER_REQUESTS_THROTTLED and
    # says "wait 5-10 seconds": no reason means more than capacity here.
    rate_reasons=MappingProxyType({}),
    capacity_reason=USER_REQUESTS_THROTTLED,
)

_ACCOUNT_OUT = RateReason(
    "account", pause=30 * 60.0,
    meaning="the account is taken out for about 30 minutes",
)
FLOW_2026_07 = Dialect(
    name="2026-07",
    page="google-flow-2026.md (July 2026)",
    models=MappingProxyType({
        "nano-banana-2-lite": Model(
            "nano-banana-2-lite", max_context=10, takes_style=False, upscalable=True,
            fallback="nano-banana-2", sizes=_FLOW_2026_SIZES, name_type="GEM_PIX_2_LITE",
        ),
        "nano-banana-2": Model(
            "nano-banana-2", max_context=10, takes_style=False, upscalable=True,
            fallback="nano-banana-2-lite", sizes=_FLOW_2026_SIZES, name_type="GEM_PIX_2",
        ),
        "nano-banana-pro": Model(
            "nano-banana-pro", max_context=10, takes_style=False, upscalable=True,
            fallback="nano-banana-2", sizes=_FLOW_2026_SIZES, name_type="GEM_PIX_PRO",
        ),
    }),
    aliases=MappingProxyType({
        "imagen-4": Alias("nano-banana-2-lite", _IMAGEN_RETIRED),
        "nano-banana": Alias(
            "nano-banana-2", "nano-banana now runs nano-banana-2 on Flow (the old name is an alias)"
        ),
    }),
    default_model="nano-banana-2-lite",
    default_model_with_context="nano-banana-2-lite",
    aspect_ratios=("16:9", "4:3", "1:1", "3:4", "9:16", "auto"),
    default_aspect_ratio="16:9",
    needs_reference=frozenset({"auto"}),
    # Reported (not confirmed) to stay as aliases: flowpipe sends the new name, so the
    # service never has to know the old one. `square` was never reported: refused.
    ratio_aliases=MappingProxyType({
        "landscape": Alias("16:9", "'landscape' is the 2025-11 name: flowpipe sends '16:9'"),
        "portrait": Alias("9:16", "'portrait' is the 2025-11 name: flowpipe sends '9:16'"),
    }),
    renamed=MappingProxyType({"square": "1:1"}),
    style_field=None,
    context_field="reference_{n}",
    reference_slots=10,
    in_keys=True,
    response_shape="media",
    image_formats=("jpeg", "png"),
    upload_types=("image/png", "image/jpeg", "image/webp"),
    upscale_resolutions=("2k", "4k"),
    upscale_source_field="mediaGenerationId",
    upscale_long_side=MappingProxyType({"2k": 2048, "4k": 4096}),
    captcha_field="captchaRetry",
    captcha_range=(1, 10),
    captcha_default=3,
    captcha_exclusive=("captchaRetry", "captchaToken", "captchaOrder"),
    captcha_refused_prefix=CAPTCHA_REFUSED_PREFIX,
    rate_reasons=MappingProxyType({
        USER_REQUESTS_THROTTLED: _ACCOUNT_OUT,
        USER_QUOTA_REACHED: _ACCOUNT_OUT,
        PER_MODEL_DAILY_QUOTA_REACHED: RateReason(
            "model", until_utc_midnight=True,
            meaning="this model is out on this account until midnight UTC",
        ),
        NO_ELIGIBLE_ACCOUNT: RateReason(
            "service", pause=60.0, meaning="every account is out; the answer says for how long",
        ),
    }),
    email_required_with_many_accounts=False,
)

DIALECTS: Mapping[str, Dialect] = MappingProxyType({
    d.name: d for d in (FLOW_2025_11, FLOW_2026_07)
})
#: Every dialect's reference fields, each once, in the order its dialect lists them.
_REFERENCE_FIELDS = tuple(dict.fromkeys(
    name for spoken in DIALECTS.values() for name in spoken.reference_fields))


def dialect(name: str | None = None) -> Dialect:
    """The dialect called ``name`` (None: the default); ValueError for an unknown one."""
    try:
        return DIALECTS[name or DEFAULT_DIALECT]
    except KeyError:
        raise ValueError(
            f"unknown API dialect {name!r}; flowpipe speaks {', '.join(DIALECTS)}"
        ) from None


def dialects_accepting(*, model: str | None = None, ratio: str | None = None) -> tuple[str, ...]:
    """Names of the dialects that take this model name or aspect ratio (for hints)."""
    return tuple(
        d.name for d in DIALECTS.values()
        if (model is None or d.canonical_model(model) is not None)
        and (ratio is None or d.canonical_ratio(ratio) is not None)
    )


def request_references(request: Iterable[str]) -> tuple[str, ...]:
    """The fields of a request (its names, of either dialect) that carry references, in
    the order its dialect lists them (``contextReference_2`` before ``_10``)."""
    names = set(request)
    return tuple(name for name in _REFERENCE_FIELDS if name in names)


def same_ratio(name: str, spoken: Dialect) -> str | None:
    """What ``spoken`` calls the aspect ratio another dialect calls ``name``, if it has one.

    ``16:9`` is ``landscape`` in 2025-11 (2026-07 keeps ``landscape`` as an alias of
    ``16:9``), ``1:1`` is ``square`` (2026-07 renamed it); ``4:3`` has no 2025-11 name.
    """
    for other in DIALECTS.values():
        if other is spoken:
            continue
        pairs = [(old, alias.target) for old, alias in other.ratio_aliases.items()]
        pairs += list(other.renamed.items())
        for old, new in pairs:
            if new == name and old in spoken.aspect_ratios:
                return old
            if old == name and new in spoken.aspect_ratios:
                return new
    return None


def seconds_to_utc_midnight(now: _dt.datetime) -> float:
    """Seconds from ``now`` (aware) to the next 00:00 UTC; a whole day at midnight itself."""
    utc = now.astimezone(_dt.UTC)
    midnight = (utc + _dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - utc).total_seconds()
