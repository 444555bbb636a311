"""Smartcar API v2 vehicle endpoints on the pipeline: `install(app)` adds them (routes.py)."""

from services.http.api_v2.routes import install

__all__ = ["install"]
