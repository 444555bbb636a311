"""Smartcar API v2 vehicle endpoints on the pipeline: `install(app)` serves them, `documentation()` documents them
(routes.py)."""

from services.http.api_v2.routes import documentation, install

__all__ = ["documentation", "install"]
