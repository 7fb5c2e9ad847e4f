"""The HTML contact sheet of an output folder: ``write_report(out)``."""

from __future__ import annotations

from flowpipe.report.render import write_report

__all__ = ["write_report"]
