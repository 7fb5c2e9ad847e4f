from __future__ import annotations

from pathlib import Path

import pytest

from flowpipe.errors import Location, RecipeSyntaxError
from flowpipe.recipe.load import MAX_ALIAS_NODES, load_document, load_text


def test_positions_of_values_and_keys_are_one_based() -> None:
    text = "version: 1\nsteps:\n  hero:\n    prompt: a shoe\n    context: [x.0, y.1]\n"
    doc = load_text(text, file="r.yaml")
    assert doc.at(("steps", "hero", "prompt")) == Location("r.yaml", 4, 13)
    assert doc.key_at(("steps", "hero")) == Location("r.yaml", 3, 3)
    assert doc.at(("steps", "hero", "context", 1)) == Location("r.yaml", 5, 20)


def test_positions_read_as_a_mapping_of_locations() -> None:
    doc = load_text("a:\n  b: [1, 2]\n", file="r.yaml")
    assert dict(doc.positions) == {
        (): Location("r.yaml", 1, 1), ("a",): Location("r.yaml", 2, 3),
        ("a", "b"): Location("r.yaml", 2, 6), ("a", "b", 0): Location("r.yaml", 2, 7),
        ("a", "b", 1): Location("r.yaml", 2, 10),
    }
    assert dict(doc.key_positions) == {
        ("a",): Location("r.yaml", 1, 1), ("a", "b"): Location("r.yaml", 2, 3)}
    assert ("a", "b") in doc.positions and ("a", "c") not in doc.positions
    assert doc.positions.get(("a", "c")) is None


def test_a_text_with_anchors_loads_as_one_without() -> None:
    """Without an '&' the loader skips alias counting; the result must not differ."""
    plain = "steps:\n  hero: {prompt: a, context: [x.0]}\n  next:\n    prompt: b\n"
    anchored = plain + "x-a: &a 1\n"
    one, other = load_text(plain, file="r.yaml"), load_text(anchored, file="r.yaml")
    assert other.data == {**one.data, "x-a": 1}
    assert dict(one.positions).items() <= dict(other.positions).items()
    assert dict(one.key_positions).items() <= dict(other.key_positions).items()


def test_unknown_path_falls_back_to_nearest_parent() -> None:
    doc = load_text("steps:\n  hero: {prompt: a}\n", file="r.yaml")
    assert doc.at(("steps", "hero", "nope", 3)) == Location("r.yaml", 2, 9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on: 1\nyes: 2\n1: 3\nnull: 4\n", {"on": 1, "yes": 2, "1": 3, "null": 4}),
        ("a: [true, 1.5, null, '1', 2024-01-01x]\n", {"a": [True, 1.5, None, "1", "2024-01-01x"]}),
    ],
    ids=["keys-as-written", "scalars-resolved"],
)
def test_data_is_plain(text: str, expected: object) -> None:
    assert load_text(text).data == expected


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ("a: 1\nb: 2\na: 3\n", (3, 1), "duplicate key 'a' (first written at line 1)"),
        ("a:\n\tb: 1\n", (2, 1), "tab character"),
        ("a: !!python/name:os.system x\n", (1, 4), "YAML tag '!!python/name:os.system'"),
        ("a: !custom x\n", (1, 4), "unsupported YAML tag '!custom'"),
        ("? [a, b]\n: 1\n", (1, 3), "mapping key must be a plain word"),
        ("a: &x [*x]\n", (1, 4), "alias refers to itself"),
        ("a: 1\n---\nb: 2\n", (2, 1), "one YAML document"),
        ("a: [1, 2\n", (2, 1), "YAML syntax"),
        ("a: \x07\n", (1, 4), "YAML syntax"),
        ("a: !!int x\n", (1, 4), "cannot read 'x' as int"),
    ],
    ids=["duplicate", "tab", "python-tag", "custom-tag", "complex-key", "recursive-alias",
         "two-docs", "unclosed", "control-char", "bad-int"],
)
def test_load_errors_have_positions(text: str, where: tuple[int, int], reason: str) -> None:
    with pytest.raises(RecipeSyntaxError) as info:
        load_text(text, file="r.yaml")
    assert info.value.location == Location("r.yaml", *where)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_merge_keys_apply_with_explicit_keys_winning() -> None:
    doc = load_text("base: &b {count: 2, model: imagen-4}\nstep:\n  <<: *b\n  count: 3\n")
    assert doc.data["step"] == {"count": 3, "model": "imagen-4"}
    assert doc.at(("step", "model")).line == 1  # where the merged value was written


def test_alias_bombs_are_refused_not_expanded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(RecipeSyntaxError, match="aliases expand to too many values"):
        load_text("\n".join(lines) + "\n")
    assert MAX_ALIAS_NODES < 10**8


def test_block_scalar_template_lines_map_to_file_lines() -> None:
    doc = load_text("p: |\n  one\n  two\n", file="r.yaml")
    assert doc.template_location(("p",), 2) == Location("r.yaml", 3, 1)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeSyntaxError, match="cannot read the recipe") as info:
        load_document(tmp_path / "missing.yaml")
    assert info.value.location == Location(str(tmp_path / "missing.yaml"), 1, 1)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(RecipeSyntaxError, match="not UTF-8") as info:
        load_document(bad)
    assert info.value.location == Location(str(bad), 2, 7)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_document(path).data == {"a": 1}
