"""fleetgate's HTTP faces: one ASGI app (FastAPI) for Connect, tokens, the vehicle API and the dashboard."""

from services.http.app import create_app
from services.http.context import HttpContext

__all__ = ["HttpContext", "create_app"]
