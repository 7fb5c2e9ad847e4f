"""The dialect table is self-consistent and is what the schema and the parts read."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from flowpipe import dialects
from flowpipe.dialects import (
    DEFAULT_DIALECT,
    DIALECTS,
    NO_ELIGIBLE_ACCOUNT,
    PER_MODEL_DAILY_QUOTA_REACHED,
    USER_QUOTA_REACHED,
    USER_REQUESTS_THROTTLED,
    dialect,
    dialects_accepting,
    request_references,
    seconds_to_utc_midnight,
)
from flowpipe.recipe.schema import recipe_schema

NAMES = sorted(DIALECTS)


def test_the_default_is_the_dialect_of_the_committed_locks() -> None:
    assert DEFAULT_DIALECT == "2025-11"
    assert dialect(None) is DIALECTS["2025-11"]
    assert not DIALECTS["2025-11"].in_keys  # so the 2025-11 keys stay as they were
    assert DIALECTS["2026-07"].in_keys


def test_unknown_dialect_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="flowpipe speaks 2025-11, 2026-07"):
        dialect("2024-01")


def test_schema_offers_exactly_the_dialects_of_the_table() -> None:
    assert recipe_schema()["properties"]["api"]["enum"] == list(DIALECTS)


@pytest.mark.parametrize("name", NAMES)
def test_every_name_in_a_dialect_points_at_something_it_has(name: str) -> None:
    spoken = DIALECTS[name]
    assert spoken.default_model in spoken.models
    assert spoken.default_model_with_context in spoken.models
    assert spoken.default_aspect_ratio in spoken.aspect_ratios
    assert spoken.needs_reference <= set(spoken.aspect_ratios)
    for alias in spoken.aliases.values():
        assert alias.target in spoken.models
    for alias in spoken.ratio_aliases.values():
        assert alias.target in spoken.aspect_ratios
    for new in spoken.renamed.values():
        assert new in spoken.aspect_ratios
    for model in spoken.models.values():
        assert model.fallback is None or model.fallback in spoken.models
        assert model.fallback != model.name
        assert 1 <= model.max_context <= spoken.reference_slots
        # every ratio a request can name has a size, except auto (the reference's shape)
        assert set(model.sizes) == set(spoken.aspect_ratios) - spoken.needs_reference
    assert set(spoken.upscale_long_side) == set(spoken.upscale_resolutions)
    assert not set(spoken.aliases) & set(spoken.models)


def test_the_facts_of_2026_07() -> None:
    new = DIALECTS["2026-07"]
    assert list(new.models) == ["nano-banana-2-lite", "nano-banana-2", "nano-banana-pro"]
    assert new.canonical_model("imagen-4") == "nano-banana-2-lite"
    assert new.canonical_model("nano-banana") == "nano-banana-2"
    assert new.aspect_ratios == ("16:9", "4:3", "1:1", "3:4", "9:16", "auto")
    assert new.canonical_ratio("landscape") == "16:9"
    assert new.canonical_ratio("square") is None
    assert [new.reference_field("context", n) for n in (1, 10)] == ["reference_1", "reference_10"]
    with pytest.raises(ValueError, match="no style"):
        new.reference_field("style", 1)
    assert new.upscale_resolutions == ("2k", "4k")
    assert all(m.upscalable for m in new.models.values())


def test_2025_11_reads_every_429_as_capacity() -> None:
    old = DIALECTS["2025-11"]
    code, meaning = old.rate_reason([USER_REQUESTS_THROTTLED])
    assert (code, meaning.scope) == (None, "capacity")


@pytest.mark.parametrize(
    ("code", "scope", "pause", "midnight"),
    [
        (USER_REQUESTS_THROTTLED, "account", 1800.0, False),
        (USER_QUOTA_REACHED, "account", 1800.0, False),
        (PER_MODEL_DAILY_QUOTA_REACHED, "model", None, True),
        (NO_ELIGIBLE_ACCOUNT, "service", 60.0, False),
    ],
)
def test_2026_07_reads_each_429_reason(
    code: str, scope: str, pause: float | None, midnight: bool
) -> None:
    found, meaning = DIALECTS["2026-07"].rate_reason(["SOMETHING_ELSE", code])
    assert found == code
    assert (meaning.scope, meaning.pause, meaning.until_utc_midnight) == (scope, pause, midnight)


def test_captcha_refusal_is_read_by_its_prefix_only_in_2026_07() -> None:
    assert DIALECTS["2026-07"].is_captcha_refusal("captcha_quality: score too low")
    assert not DIALECTS["2026-07"].is_captcha_refusal("Unauthorized access to user:1")
    assert not DIALECTS["2025-11"].is_captcha_refusal("captcha_quality: score too low")


def test_dialects_accepting_names_where_a_value_is_valid() -> None:
    assert dialects_accepting(ratio="16:9") == ("2026-07",)
    assert dialects_accepting(ratio="landscape") == ("2025-11", "2026-07")
    assert dialects_accepting(model="nano-banana-pro") == ("2026-07",)
    assert dialects_accepting(model="dall-e") == ()


def test_reference_fields_in_the_order_a_request_lists_them() -> None:
    """The one list of which request fields carry references (plan, why, diff, report)."""
    assert dialect("2025-11").reference_fields == (
        "styleReference_1", "contextReference_1", "contextReference_2", "contextReference_3",
        "contextReference_4")
    assert dialect("2026-07").reference_fields[-3:] == (
        "reference_9", "reference_10", "mediaGenerationId")
    request = {"reference_10": "", "prompt": "", "reference_2": "", "seed": 1}
    assert request_references(request) == ("reference_2", "reference_10")
    assert request_references(["contextReference_1", "styleReference_1", "model"]) == (
        "styleReference_1", "contextReference_1")


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        ("2026-07-15T23:59:30+00:00", 30.0),
        ("2026-07-15T00:00:00+00:00", 86400.0),
        ("2026-07-15T22:00:00-02:00", 86400.0),  # that is midnight UTC
        ("2026-07-15T12:00:00+02:00", 14 * 3600.0),
    ],
)
def test_seconds_to_utc_midnight(now: str, seconds: float) -> None:
    assert seconds_to_utc_midnight(dt.datetime.fromisoformat(now)) == seconds


def test_the_table_module_imports_none_of_the_parts_that_read_it() -> None:
    tree = ast.parse(Path(dialects.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
         for alias in node.names}
    assert not {m for m in imported if m.startswith("flowpipe")}
