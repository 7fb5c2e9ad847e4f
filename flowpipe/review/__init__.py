"""``flowpipe review``: pick and reject images in a browser; picks go to RECIPE.picks.yaml."""

from __future__ import annotations

from flowpipe.review.server import (
    HOST,
    ReviewConfig,
    ReviewServer,
    find_recipe,
    review_app,
    serve_review,
)

__all__ = ["HOST", "ReviewConfig", "ReviewServer", "find_recipe", "review_app", "serve_review"]
