"""The image renderer: native sizes, determinism, the render cache."""

from __future__ import annotations

import io

from PIL import Image

from flowpipe.sim.render import RefImage, Renderer, RenderSpec, render_image


def test_render_is_deterministic_and_decodes() -> None:
    spec = RenderSpec("a fox", "nano-banana", "portrait", 3)
    first, second = render_image(spec), render_image(spec)
    assert first == second
    with Image.open(io.BytesIO(first.jpeg)) as image:
        assert (image.format, image.size) == ("JPEG", (768, 1344))
    with Image.open(io.BytesIO(first.thumb)) as thumb:
        assert max(thumb.size) <= 160


def test_reference_thumbnails_change_the_image() -> None:
    ref = render_image(RenderSpec("a ref", "imagen-4", "square", 1))
    plain = render_image(RenderSpec("a fox", "imagen-4", "square", 3))
    with_ref = render_image(
        RenderSpec("a fox", "imagen-4", "square", 3, (RefImage(ref.sha256, ref.thumb),))
    )
    assert plain.jpeg != with_ref.jpeg


def test_variants_share_the_base_but_differ() -> None:
    spec = RenderSpec("a fox", "imagen-4", "landscape", 3)
    first, second = render_image(spec, 0), render_image(spec, 1)
    assert first.sha256 != second.sha256
    with Image.open(io.BytesIO(first.jpeg)) as a, Image.open(io.BytesIO(second.jpeg)) as b:
        bottom = (0, 400, 1408, 768)  # the prompt panel is the same in both
        assert a.crop(bottom).tobytes() == b.crop(bottom).tobytes()
        assert a.crop((0, 0, 200, 100)).tobytes() != b.crop((0, 0, 200, 100)).tobytes()


def test_renderer_caches_by_spec_and_index() -> None:
    renderer = Renderer(max_entries=1)
    spec = RenderSpec("a fox", "imagen-4", "landscape", 3)
    first = renderer.render(spec, 2)
    assert renderer.render(spec, 2) is first
    renderer.render(spec, 0)
    again = renderer.render(spec, 2)
    assert again is not first and again == first == render_image(spec, 2)
