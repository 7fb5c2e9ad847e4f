"""What the recipe's ``api:`` accepts: per-dialect checks of a schema-valid recipe.

The schema takes every dialect's names; this pass reads ``api:`` (absent: 2025-11,
so committed locks keep their keys) and checks each written model, aspect ratio,
fallback, reference list, ``style``, ``captchaRetry`` and upscale step against that
dialect's table in ``flowpipe.dialects``, at the place it was written. A name that
another dialect takes says so in its hint ("write 'landscape': 16:9 is 'landscape' in
api 2025-11, and 16:9 needs `api: 2026-07`"); an old name
the dialect still takes (an alias) is a warning, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowpipe.dialects import DIALECTS, Dialect, dialect, dialects_accepting, same_ratio
from flowpipe.errors import PlanError, SchemaError
from flowpipe.recipe.fields import (
    REQUEST_FIELDS,
    UPSCALE_FIELDS,
    field_problem,
    is_field_template,
)
from flowpipe.recipe.load import Document, YamlPath
from flowpipe.recipe.messages import (
    ErrorList,
    RecipeWarning,
    WarningList,
    did_you_mean,
    quote,
)
from flowpipe.recipe.validate import describe_path

__all__ = ["UPSCALE_ONLY", "UPSCALE_REFUSES", "check_dialect", "recipe_dialect", "value_problem"]

#: Keys an upscale step may not have (it makes one image from its source, no prompt).
UPSCALE_REFUSES = (
    "prompt", "model", "aspectRatio", "count", "seed", "style", "context",
    "fallback_model", "moderation_retries",
)
#: Keys that only make sense on an upscale step.
UPSCALE_ONLY = ("resolution",)


def recipe_dialect(doc: Document) -> Dialect:
    """The dialect a schema-valid recipe speaks."""
    data = doc.data if isinstance(doc.data, dict) else {}
    return dialect(data.get("api"))


def value_problem(spoken: Dialect, key: str, value: Any) -> tuple[str, str | None] | None:
    """``(message, hint)`` when ``spoken`` does not take ``value`` for ``key``, else None.

    ``key`` is ``model``, ``fallback_model``, ``aspectRatio`` or ``resolution``. Public so
    every place a value can be set (a step, ``defaults``, a matrix) says the same thing.
    """
    text = str(value)
    if key in ("model", "fallback_model"):
        if spoken.canonical_model(text) is not None or (key == "fallback_model" and text == "none"):
            return None
        choices = list(spoken.model_names) + (["none"] if key == "fallback_model" else [])
        others = dialects_accepting(model=text)
    elif key == "aspectRatio":
        if spoken.canonical_ratio(text) is not None:
            return None
        choices, others = list(spoken.aspect_ratios), dialects_accepting(ratio=text)
    elif key == "resolution":
        if text in spoken.upscale_resolutions:
            return None
        choices, others = list(spoken.upscale_resolutions), ()
    else:
        return None
    near = "" if others else did_you_mean(text, choices)
    message = f"{quote(value)} is not one of {', '.join(choices)}{near}"
    hints = [f"write '{spoken.renamed[text]}'"] if text in spoken.renamed else []
    same = same_ratio(text, spoken) if key == "aspectRatio" else None
    if same is not None and others:
        hints.append(f"write '{same}': {text} is '{same}' in api {spoken.name}, and {text} "
                     f"needs `api: {others[0]}`")
    elif others:
        hints.append(f"{text} needs `api: {others[0]}`")
    return message, "; ".join(hints) or None


def check_dialect(doc: Document, errors: ErrorList, warnings: WarningList) -> Dialect:
    """Check every written value against the recipe's dialect; returns that dialect."""
    spoken = recipe_dialect(doc)
    data: dict[str, Any] = doc.data
    checker = _Checker(doc, spoken, errors, warnings)
    checker.mapping(("defaults",), data.get("defaults") or {})
    for step_id, spec in data["steps"].items():
        checker.step(("steps", step_id), spec)
    return spoken


class _Checker:
    """Checks ``defaults`` and each step; errors and warnings go to the lists given."""

    def __init__(
        self, doc: Document, spoken: Dialect, errors: ErrorList, warnings: WarningList
    ) -> None:
        self.doc, self.spoken, self.errors, self.warnings = doc, spoken, errors, warnings

    def mapping(self, base: YamlPath, spec: Mapping[str, Any]) -> None:
        """Keys that ``defaults`` and steps share."""
        for key in ("model", "fallback_model", "aspectRatio"):
            if key in spec and not (key != "fallback_model" and is_field_template(spec[key])):
                self.value(base, key, spec[key])
        if "captchaRetry" in spec and self.spoken.captcha_field is None:
            later = _later_dialect(self.spoken, "captcha_field")
            self.fail(base, "captchaRetry", f"api {self.spoken.name} has no captcha to retry",
                      f"captchaRetry needs `api: {later}`" if later else "remove it", at_key=True)

    def step(self, base: YamlPath, spec: Mapping[str, Any]) -> None:
        self.mapping(base, spec)
        self.matrix_fields(base, spec)
        spoken = self.spoken
        if "style" in spec and spoken.style_field is None:
            self.fail(base, "style", f"api {spoken.name} has no style references",
                      "list the image under 'context:' instead: every reference is one "
                      f"kind, sent as {spoken.context_field.format(n='N')}", at_key=True)
        if "upscale" in spec:
            self.upscale(base, spec)
        else:
            for key in UPSCALE_ONLY:
                if key in spec:
                    self.fail(base, key, "only an upscale step has one",
                              "add 'upscale: STEP.N' or remove it", at_key=True)

    def matrix_fields(self, base: YamlPath, spec: Mapping[str, Any]) -> None:
        """Matrix variables that set a request field: each value must be one it takes. A
        variable named after a field this kind of step has not would set nothing (every
        node would make the same request): an error, not a silent template variable."""
        matrix = spec.get("matrix")
        if not isinstance(matrix, dict):
            return
        # An upscale step's matrix of generate fields is upscale()'s error.
        sets, refused = ((UPSCALE_FIELDS, ()) if "upscale" in spec
                         else (REQUEST_FIELDS, UPSCALE_FIELDS))
        for key in refused:
            if key in matrix:
                self.fail((*base, "matrix"), key, f"only an upscale step sets {quote(key)}",
                          "a generate step sends none: name the variable otherwise",
                          at_key=True)
        for key in sets:
            if key not in matrix:
                continue
            where = (*base, "matrix", key)
            if key in spec:
                self.errors.add(PlanError(
                    f"{describe_path(where)}: the step sets {quote(key)} too",
                    self.doc.key_at(where), hint="remove one: the matrix sets it per node",
                ))
                continue
            for i, value in enumerate(matrix[key]):
                self.field(where, i, key, value)

    def field(self, where: YamlPath, index: int, key: str, value: Any) -> None:
        """One matrix value of a request field, checked at its own place."""
        path = (*where, index)
        problem, hint = field_problem(key, value), None
        if problem is not None:
            problem += f" (got {quote(value)})"
        elif key in ("model", "aspectRatio", "resolution"):
            found = value_problem(self.spoken, key, value)
            if found is None:
                self.alias(path, key, str(value))
                return
            problem, hint = found
        if problem is not None:
            self.errors.add(SchemaError(f"{describe_path(path)}: {problem}", self.doc.at(path),
                                        hint=hint))

    def upscale(self, base: YamlPath, spec: Mapping[str, Any]) -> None:
        spoken = self.spoken
        if not spoken.upscale_resolutions:
            later = _later_dialect(spoken, "upscale_resolutions")
            hint = f"upscale steps need `api: {later}`" if later else None
            self.fail(base, "upscale", f"api {spoken.name} cannot upscale", hint, at_key=True)
            return
        matrix = spec.get("matrix")
        matrix = matrix if isinstance(matrix, dict) else {}
        for key in UPSCALE_REFUSES:
            if key in spec:
                self.fail(base, key, f"an upscale step takes no {quote(key)}",
                          "it makes one image from its source: remove it", at_key=True)
            elif key in REQUEST_FIELDS and key in matrix:
                self.fail((*base, "matrix"), key, f"an upscale step takes no {quote(key)}",
                          "it makes one image from its source: name the variable otherwise",
                          at_key=True)
        if "resolution" in spec:
            self.value(base, "resolution", spec["resolution"])

    def value(self, base: YamlPath, key: str, value: Any) -> None:
        path = (*base, key)
        problem = value_problem(self.spoken, key, value)
        if problem is not None:
            message, hint = problem
            self.errors.add(SchemaError(f"{describe_path(path)}: {message}", self.doc.at(path),
                                        hint=hint))
            return
        self.alias(path, key, str(value))

    def alias(self, path: YamlPath, key: str, text: str) -> None:
        """An old name the dialect still takes: a warning with the name to write."""
        aliases = self.spoken.ratio_aliases if key == "aspectRatio" else self.spoken.aliases
        alias = aliases.get(text)
        if alias is not None:
            self.warnings.add(RecipeWarning(
                f"{describe_path(path)}: {alias.warning}", self.doc.at(path),
                hint=f"write '{alias.target}'",
            ))

    def fail(
        self, base: YamlPath, name: str, message: str, hint: str | None, *, at_key: bool = False
    ) -> None:
        """An error about key ``name``: at the key itself, or at its value."""
        path = (*base, name)
        where = self.doc.key_at(path) if at_key else self.doc.at(path)
        self.errors.add(PlanError(f"{describe_path(path)}: {message}", where, hint=hint))


def _later_dialect(spoken: Dialect, attribute: str) -> str | None:
    """The name of a dialect that has what ``spoken`` lacks (for 'needs `api: X`' hints)."""
    for other in DIALECTS.values():
        if other is not spoken and getattr(other, attribute):
            return other.name
    return None
