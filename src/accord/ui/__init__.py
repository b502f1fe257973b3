"""The dashboard at /ui: server-rendered pages (Jinja2 + htmx, Chart.js) over the API's store.

``include_ui(app, cfg)`` adds it to the API app; ``accord serve`` serves it. Everything it loads
ships in this package (``static/``): it works with no internet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from accord.config import ProjectConfig


def include_ui(app: FastAPI, cfg: ProjectConfig) -> None:
    """Serve the dashboard at /ui (assets at /ui/static)."""
    # Imported here: the dashboard builds on the API package, which imports this one.
    from accord.ui.mount import include_ui as include

    include(app, cfg)


__all__ = ["include_ui"]
