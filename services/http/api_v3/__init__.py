"""Smartcar API v3 on the pipeline: a vehicle, its signals and commands (routes.py), in the shapes Smartcar really
sends (shapes.py). `install(app)` adds them."""

from services.http.api_v3.routes import install

__all__ = ["install"]
