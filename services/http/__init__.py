"""The HTTP face: one ASGI app for Connect, tokens, the API and the dashboard."""
