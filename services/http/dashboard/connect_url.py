"""The Connect URL an app sends its users to, as the official SDK's `AuthClient.get_auth_url` builds it (the same
parameters in the same order), with or without a `scope` that overrides the app's Vehicle Access config."""

from __future__ import annotations

from urllib.parse import urlencode

from schemas.application import Application


def connect_url(origin: str, app: Application, scope: str | None = None) -> str:
    """`{origin}/oauth/authorize?...` for the app: its first registered redirect URI, its mode, `scope` if given."""
    query = {"response_type": "code", "client_id": app.id, "approval_prompt": "auto", "mode": app.mode.value}
    if app.redirect_uris:
        query["redirect_uri"] = app.redirect_uris[0]
    if scope:
        query["scope"] = scope
    return f"{origin.rstrip('/')}/oauth/authorize?{urlencode(query)}"
