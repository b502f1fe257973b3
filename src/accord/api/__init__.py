"""The HTTP API: FastAPI app, one router per area, API keys with roles."""

from accord.api.app import create_app

__all__ = ["create_app"]
