"""Write ``compare.html``: one self-contained page, images inlined, no network.

Only the nodes that changed carry images (downscaled JPEGs as ``data:`` URIs), so the
page stays small; unchanged nodes are listed, folded. Every recipe string goes through
Jinja's autoescape; the page's one script is allowed by its hash.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup
from PIL import Image, UnidentifiedImageError

from flowpipe.compare.diff import Comparison
from flowpipe.compare.sides import SideImage
from flowpipe.errors import OutputError
from flowpipe.store.outputs import atomic_write

__all__ = ["render_compare", "write_compare"]

_WIDTH = 1024  # pixels of the inlined images: enough to see a change, small enough to mail


@functools.cache
def _asset(name: str) -> str:
    return resources.files("flowpipe.compare").joinpath("templates", name).read_text("utf-8")


def _data_uri(image: SideImage | None) -> str | None:
    """A downscaled JPEG of the image as a data: URI (None when its bytes are gone)."""
    if image is None or image.data is None:
        return None
    try:
        with Image.open(io.BytesIO(image.data)) as im:
            im.draft("RGB", (_WIDTH, _WIDTH))
            small = im.convert("RGB")
            if small.width > _WIDTH:
                small = small.resize((_WIDTH, max(1, small.height * _WIDTH // small.width)))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_compare(comparison: Comparison) -> str:
    """The page's HTML."""
    script = _asset("compare.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("flowpipe.compare", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["uri"] = _data_uri
    return env.get_template("compare.html.j2").render(
        c=comparison, changed=comparison.changed(), same=comparison.same(), csp=csp,
        css=Markup(_asset("compare.css")),  # noqa: S704 - our own packaged stylesheet
        script=Markup(script),  # noqa: S704 - our own packaged script, hashed in the CSP
    )


def write_compare(comparison: Comparison, path: Path) -> Path:
    """Write the page atomically to ``path``."""
    try:
        atomic_write(Path(path), render_compare(comparison).encode("utf-8"))
    except OutputError as exc:
        raise OutputError(f"{path}: cannot be written: {exc.message}") from None
    return Path(path)
