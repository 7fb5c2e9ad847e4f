"""Deterministic stand-in images: real JPEGs at the models' native sizes.

An image is a pure function of (prompt, model, aspect ratio, seed, reference
contents, index): the palette comes from the prompt, the layout of shapes from the
seed, the prompt text is written on it, each reference appears as a small inset and a
badge numbers the variant, so a person can tell prompts apart and follow reference
chains. The images of one request share a base drawn once; finished JPEGs are cached
because benchmarks ask for thousands of images and encoding is the costly part.
"""

from __future__ import annotations

import hashlib
import io
import random
import textwrap
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from flowpipe.dialects import DIALECTS

__all__ = [
    "ALL_SIZES",
    "NATIVE_SIZES",
    "RefImage",
    "RenderSpec",
    "Rendered",
    "Renderer",
    "as_png",
    "encode_variant",
    "make_thumb",
    "native_size",
    "render_base",
    "render_image",
    "render_upscale",
]

#: (model, aspect ratio) -> pixels of the 2025-11 page's models (Imagen 4, Nano Banana).
NATIVE_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    (name, ratio): size
    for name, model in DIALECTS["2025-11"].models.items()
    for ratio, size in model.sizes.items()
}
#: The same for every model of every dialect (from the table); what the renderer draws.
ALL_SIZES: dict[tuple[str, str], tuple[int, int]] = {
    (name, ratio): size
    for spoken in DIALECTS.values()
    for name, model in spoken.models.items()
    for ratio, size in model.sizes.items()
}

JPEG_QUALITY = 75
THUMB_SIZE = 160


@dataclass(frozen=True, slots=True)
class RefImage:
    """A reference as the renderer sees it: its content hash and a small JPEG of it."""

    sha256: str
    thumb: bytes


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """Everything that shapes one image; equal specs give equal bytes."""

    prompt: str
    model: str
    aspect_ratio: str
    seed: int
    references: tuple[RefImage, ...] = ()

    def cache_key(self) -> tuple[str, str, str, int, tuple[str, ...]]:
        """The spec without thumbnail bytes (they follow from the hashes)."""
        refs = tuple(ref.sha256 for ref in self.references)
        return (self.prompt, self.model, self.aspect_ratio, self.seed, refs)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A finished image: JPEG bytes, their SHA-256 and a thumbnail for later references."""

    jpeg: bytes
    sha256: str
    thumb: bytes
    width: int
    height: int


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()


def _palette(prompt: str, model: str) -> list[tuple[int, int, int]]:
    raw = _digest("palette", prompt, model)
    return [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, 18, 3)]


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def make_thumb(image: Image.Image) -> bytes:
    """A small JPEG of an image, to draw as an inset when it is used as a reference."""
    small = image.convert("RGB")
    factor = max(1, max(small.size) // THUMB_SIZE)
    small = small.reduce(factor) if factor > 1 else small.copy()
    small.thumbnail((THUMB_SIZE, THUMB_SIZE))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def _draw_shapes(draw: ImageDraw.ImageDraw, size: tuple[int, int], spec: RenderSpec) -> None:
    width, height = size
    colors = _palette(spec.prompt, spec.model)
    rng = random.Random(_digest("layout", *spec.cache_key()))
    bands = 12
    top, bottom = colors[0], colors[1]
    for i in range(bands):
        mix = i / (bands - 1)
        color = tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True))
        y0 = height * i // bands
        draw.rectangle((0, y0, width, height * (i + 1) // bands), fill=color)
    for _ in range(9):
        color = colors[rng.randrange(2, len(colors))]
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(min(size) // 12, min(size) // 4)
        box = (x - r, y - r, x + r, y + r)
        shape = rng.randrange(3)
        if shape == 0:
            draw.ellipse(box, fill=color, outline=(255, 255, 255), width=3)
        elif shape == 1:
            draw.rectangle(box, fill=color)
        else:
            draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=color)


def _draw_text(image: Image.Image, draw: ImageDraw.ImageDraw, spec: RenderSpec) -> None:
    width, height = image.size
    big_size, small_size = max(22, width // 36), max(16, width // 60)
    big, small = _font(big_size), _font(small_size)
    lines = textwrap.wrap(spec.prompt, width=max(20, width // (big_size // 2 + 1)))[:4]
    line_height = big_size + 10
    panel_top = height - 40 - line_height * len(lines) - small_size
    draw.rectangle((0, panel_top - 16, width, height), fill=(16, 16, 20))
    y = panel_top
    for line in lines:
        draw.text((24, y), line, font=big, fill=(250, 250, 250))
        y += line_height
    refs = ", ".join(ref.sha256[:8] for ref in spec.references) or "none"
    footer = f"{spec.model} · {spec.aspect_ratio} · seed {spec.seed} · refs {refs}"
    draw.text((24, y + 4), footer, font=small, fill=(200, 200, 200))
    x = width - 16
    for ref in spec.references:
        with Image.open(io.BytesIO(ref.thumb)) as thumb:
            inset = thumb.convert("RGB")
        x -= inset.width
        draw.rectangle((x - 4, 12, x + inset.width + 3, 20 + inset.height), fill=(255, 255, 255))
        image.paste(inset, (x, 16))
        x -= 16


def native_size(spec: RenderSpec) -> tuple[int, int]:
    """The model's size for the ratio; for ``auto``, the one nearest the first reference's shape."""
    size = ALL_SIZES.get((spec.model, spec.aspect_ratio))
    if size is not None:
        return size
    sizes = [s for (model, _), s in ALL_SIZES.items() if model == spec.model]
    shape = 16 / 9
    if spec.references:
        with Image.open(io.BytesIO(spec.references[0].thumb)) as thumb:
            shape = thumb.width / thumb.height
    return min(sizes, key=lambda s: abs(s[0] / s[1] - shape))


def as_png(jpeg: bytes) -> bytes:
    """The same picture as PNG bytes (2026-07 sends some images so)."""
    with Image.open(io.BytesIO(jpeg)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def render_upscale(
    source: RefImage, long_side: int, label: str, shape: tuple[int, int] = (0, 0)
) -> bytes:
    """An enlarged stand-in of ``source`` (its thumbnail, scaled up and labelled), as JPEG.

    The long side is ``long_side``; the other follows ``shape`` (the source's pixels)
    when known, else the thumbnail's.
    """
    with Image.open(io.BytesIO(source.thumb)) as thumb:
        small = thumb.convert("RGB")
    width, height = shape if min(shape) > 0 else small.size
    factor = long_side / max(width, height)
    size = (round(width * factor), round(height * factor))
    image = small.resize(size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    text = f"upscaled {label} · {source.sha256[:8]}"
    font = _font(max(16, size[0] // 40))
    draw.rectangle((0, size[1] - size[1] // 12, size[0], size[1]), fill=(16, 16, 20))
    draw.text((24, size[1] - size[1] // 12 + 8), text, font=font, fill=(250, 250, 250))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def render_base(spec: RenderSpec) -> Image.Image:
    """Shapes, prompt text and reference insets: everything the images of one request share."""
    size = native_size(spec)
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    _draw_shapes(draw, size, spec)
    _draw_text(image, draw, spec)
    return image


def _draw_badge(image: Image.Image, spec: RenderSpec, index: int) -> None:
    """Mark variant ``index`` with its number (0-based, as the report and references count)
    and a colour of its own, top left."""
    draw = ImageDraw.Draw(image)
    raw = _digest("variant", *spec.cache_key(), index)
    size = max(28, image.width // 24)
    draw.rounded_rectangle((16, 16, 16 + size * 3, 16 + size + 16), 10, fill=(16, 16, 20))
    draw.ellipse((24, 24, 24 + size, 24 + size), fill=(raw[0], raw[1], raw[2]))
    draw.text((32 + size, 20), f"#{index}", font=_font(size), fill=(250, 250, 250))


def encode_variant(base: Image.Image, spec: RenderSpec, index: int) -> Rendered:
    """Image ``index`` of a request: the base with its badge, as a JPEG."""
    image = base.copy()
    _draw_badge(image, spec, index)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    jpeg = buffer.getvalue()
    with Image.open(io.BytesIO(jpeg)) as decoded:
        # From the decoded bytes, as for an upload: a re-uploaded copy of this image
        # must render exactly like a reference to the original.
        thumb = make_thumb(decoded)
    return Rendered(
        jpeg=jpeg,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        thumb=thumb,
        width=image.width,
        height=image.height,
    )


def render_image(spec: RenderSpec, index: int = 0) -> Rendered:
    """Draw and encode image ``index`` of ``spec`` (no cache)."""
    return encode_variant(render_base(spec), spec, index)


class Renderer:
    """Thread-safe LRU caches: finished images by (spec, index), shared bases by spec.

    A request for 4 images draws its base once; a repeated request encodes nothing.
    """

    def __init__(self, max_entries: int = 128, max_bases: int = 8, workers: int = 2) -> None:
        # Its own small pool: drawing in the loop's default executor spread large
        # allocations over many threads' malloc arenas, which kept ~100 MB of freed
        # memory resident in a 2,000-image run.
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sim-render")
        self._max = max_entries
        self._max_bases = max_bases
        self._cache: OrderedDict[tuple[object, ...], Rendered] = OrderedDict()
        self._bases: OrderedDict[tuple[object, ...], Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    def _base(self, spec: RenderSpec) -> Image.Image:
        key = spec.cache_key()
        with self._lock:
            base = self._bases.get(key)
            if base is not None:
                self._bases.move_to_end(key)
                return base
        base = render_base(spec)
        with self._lock:
            self._bases[key] = base
            while len(self._bases) > self._max_bases:
                self._bases.popitem(last=False)
        return base

    def render(self, spec: RenderSpec, index: int = 0) -> Rendered:
        """Image ``index`` of ``spec``, drawn once while it stays cached."""
        key = (*spec.cache_key(), index)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        rendered = encode_variant(self._base(spec), spec, index)
        with self._lock:
            self._cache[key] = rendered
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return rendered
