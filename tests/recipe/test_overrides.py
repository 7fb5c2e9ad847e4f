from __future__ import annotations

import pytest

from flowpipe.errors import UsageError
from flowpipe.recipe import parse_var_overrides


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (("product=boot",), {"product": "boot"}),
        (("n=3", "r=1.5", "flag=true"), {"n": 3, "r": 1.5, "flag": True}),
        (("text=a: b",), {"text": "a: b"}),
        (("list=[a, b]",), {"list": "[a, b]"}),
        (("empty=",), {"empty": ""}),
        (("nothing=null",), {"nothing": None}),
        (("eq=a=b",), {"eq": "a=b"}),
        (("x=1", "x=2"), {"x": 2}),
        (("quoted='3'",), {"quoted": "3"}),
        (("bad=[unclosed",), {"bad": "[unclosed"}),
    ],
    ids=["text", "typed", "mapping-stays-text", "list-stays-text", "empty", "null",
         "equals-in-value", "last-wins", "quoted", "invalid-yaml-stays-text"],
)
def test_values_are_yaml_scalars(items: tuple[str, ...], expected: dict[str, object]) -> None:
    assert parse_var_overrides(items) == expected


@pytest.mark.parametrize("item", ["product", "=boot", "1x=2", "my-var=3", "a b=1"])
def test_bad_form_is_a_usage_error(item: str) -> None:
    with pytest.raises(UsageError, match="expected NAME=VALUE"):
        parse_var_overrides((item,))
