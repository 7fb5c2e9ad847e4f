"""mediaGenerationIds: the page's form, parsing, ownership registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowpipe.sim.ids import MediaRecord, MediaRegistry, format_id, parse_id, user_id


def test_format_and_parse_round_trip() -> None:
    media = format_id("jo@example.com", "CAMaJDgy")
    assert (
        media
        == f"user:{user_id('jo@example.com')}-email:6a6f406578616d706c652e636f6d-image:CAMaJDgy"
    )
    parsed = parse_id(media)
    assert parsed is not None
    assert (parsed.user, parsed.email, parsed.image) == (
        f"user:{user_id('jo@example.com')}",
        "jo@example.com",
        "CAMaJDgy",
    )


@pytest.mark.parametrize(
    "text", ["", "user:1-email:zz-image:A", "user:x-email:61-image:A", "user:1-email:61-image:"]
)
def test_parse_rejects_malformed(text: str) -> None:
    assert parse_id(text) is None


def test_registry_gives_new_ids_and_forgets() -> None:
    registry = MediaRegistry(seed=0)
    record = MediaRecord(owner="a@x.io", sha256="ab" * 32, thumb=b"")
    first, second = registry.register(record), registry.register(record)
    assert first != second
    assert registry.get(first) == record
    assert parse_id(first) is not None
    assert registry.forget_all() == 2
    assert registry.get(first) is None


def test_a_registry_with_a_folder_outlives_the_simulator(tmp_path: Path) -> None:
    made = MediaRecord(owner="a@x.io", sha256="ab" * 32, thumb=b"\xff\xd8thumb", width=8,
                       height=6, model="imagen-4")
    upload = MediaRecord(owner="a@x.io", sha256="cd" * 32, thumb=b"t2")
    first = MediaRegistry(seed=0, folder=tmp_path)
    generated, uploaded = first.register(made), first.register_upload(upload)
    assert first.register_upload(upload) == uploaded  # same bytes, same account: same id
    other = MediaRecord(owner="b@x.io", sha256="cd" * 32, thumb=b"t2")
    assert first.register_upload(other) != uploaded
    restarted = MediaRegistry(seed=0, folder=tmp_path)
    assert restarted.get(generated) == made
    assert restarted.get(uploaded) == upload
    assert MediaRegistry(seed=0).get(generated) is None  # without a folder: forgotten
    restarted.forget_all()
    assert MediaRegistry(seed=0, folder=tmp_path).get(generated) is None


def test_an_unreadable_record_is_an_unknown_id(tmp_path: Path) -> None:
    registry = MediaRegistry(seed=0, folder=tmp_path)
    media = registry.register(MediaRecord(owner="a@x.io", sha256="ab" * 32, thumb=b"t"))
    for path in tmp_path.glob("*.json"):
        path.write_text("{half")
    assert MediaRegistry(seed=0, folder=tmp_path).get(media) is None


def test_with_a_folder_memory_holds_only_recent_records(tmp_path: Path) -> None:
    registry = MediaRegistry(seed=0, folder=tmp_path, memory=2)
    made = [MediaRecord(owner="a@x.io", sha256=f"{i:02x}" * 32, thumb=b"t") for i in range(5)]
    ids = [registry.register(record) for record in made]
    assert len(registry) == 2  # held in memory: the two most recent
    assert [registry.get(media) for media in ids] == made  # the rest read back from the folder
    assert len(registry) == 2
    unbounded = MediaRegistry(seed=0, memory=2)  # no folder: memory is the only copy
    kept = [unbounded.register(record) for record in made]
    assert len(unbounded) == 5 and unbounded.get(kept[0]) == made[0]
