"""RunResult keeps run.json compressed and parses it once, on first use."""

from __future__ import annotations

import json
import pickle

import pytest

from flowpipe.results import JsonPacker, PackedJson


def pack(*pieces: str) -> PackedJson:
    packer = JsonPacker()
    for piece in pieces:
        packer.write(piece)
    return packer.packed()


def test_the_text_written_in_pieces_is_the_object_read_back() -> None:
    nodes = {f"tile[{i}]": {"cache_hit": i % 2 == 0, "seconds": i / 7} for i in range(5000)}
    text = json.dumps({"nodes": nodes}, indent=2)
    assert len(text) > 1 << 17  # more than one buffer of the packer
    packed = pack(*(text[i:i + 3] for i in range(0, len(text), 3)))
    assert packed.value() == {"nodes": nodes}
    assert len(packed.data) < len(text) / 5


def test_the_value_is_parsed_once() -> None:
    packed = pack('{"a": [1, 2]}')
    assert packed.value() is packed.value()


def test_equal_when_the_texts_are_and_pickled_as_the_text() -> None:
    packed = pack('{"a": ', "1}")
    assert packed == pack('{"a": 1}') and packed != pack('{"a": 2}')
    assert hash(packed) == hash(pack('{"a": 1}'))
    packed.value()
    again = pickle.loads(pickle.dumps(packed))
    assert again == packed and again.value() == {"a": 1}


def test_a_text_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(TypeError, match="JSON object, not list"):
        pack("[1]").value()
